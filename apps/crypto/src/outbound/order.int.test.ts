import { connect, type NatsConnection } from 'nats';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import { NatsBus, systemClock } from '@relay/platform';
import { DevicePlaintext, type OutboundRequest } from '@relay/protocol';
import { TEST_NATS_URL } from '@relay/testing';
import { busPublisher, type EventPublisher } from '../common/publisher';
import { CryptoConfigSchema } from '../config';
import { cryptoDataSource } from '../data-source';
import { CryptoServices } from '../services';
import { SignalWorkerPool } from '../signal/worker-pool';
import type { OutboxEvent } from '../store/outbox.repository';
import { DeviceClient } from '../testing/device-client';
import { CryptoTestEnv, randomId } from '../testing/harness.test';
import { OutboundProcessor } from './outbound.processor';

// Per-session order of business messages across processes: two "processes" (each its own Postgres
// pool, NATS connection, libsignal worker and processor) encrypt for the same device session. Process
// A's publishes fail as while NATS restarts (a stand-in publisher in front of the real bus); whatever
// it committed must still enter DELIVERY before what process B makes next for that session.
// Real Postgres, NATS/JetStream and libsignal on both sides.
const t = new CryptoTestEnv();
const PN = '15550400';
const device = new DeviceClient('491790000041', 1);
const log = pino({ level: 'silent' });

/**
 * Fails every non-empty publish while `down`, like a bus whose NATS server is restarting; counts the
 * delivery ciphertexts handed to the bus.
 */
class Outage implements EventPublisher {
  down = false;
  readonly published = new Map<string, number>();
  constructor(private readonly inner: EventPublisher) {}
  async publish(events: OutboxEvent[]): Promise<void> {
    if (this.down) throw new Error('NATS connection is reconnecting');
    for (const e of events)
      if (e.name === 'delivery.ciphertext')
        this.published.set(e.msgId, (this.published.get(e.msgId) ?? 0) + 1);
    await this.inner.publish(events);
  }
}

interface Proc {
  ds: DataSource;
  nc: NatsConnection;
  bus: NatsBus;
  engine: SignalWorkerPool;
  s: CryptoServices;
  outage: Outage;
  /** The outbound processor whose publishes go through `outage`. */
  outbound: OutboundProcessor;
}
const procs: Proc[] = [];

async function startProc(): Promise<Proc> {
  const config = CryptoConfigSchema.parse(t.env());
  const ds = cryptoDataSource(t.db.url, 3);
  await ds.initialize();
  const nc = await connect({ servers: TEST_NATS_URL, name: `test-outbound-order-${procs.length}` });
  const bus = new NatsBus(
    nc,
    nc.jetstream(),
    await nc.jetstreamManager(),
    t.root,
    'crypto',
    log,
    new Registry(),
  );
  const engine = new SignalWorkerPool(1);
  const s = new CryptoServices(ds, bus, engine, config, systemClock, log);
  const outage = new Outage(busPublisher(bus));
  const outbound = new OutboundProcessor(
    s.processorDeps,
    { rpcTimeoutMs: config.GATEWAY_RPC_TIMEOUT_MS, deviceListTtlMs: config.DEVICE_LIST_TTL_MS },
    outage,
  );
  const p = { ds, nc, bus, engine, s, outage, outbound };
  procs.push(p);
  return p;
}

let a: Proc;
let b: Proc;

beforeAll(async () => {
  await t.setup('cryptooutorder');
  a = await startProc();
  b = await startProc();
  await a.s.provisioning.provision(PN);
  await device.startSession(
    PN,
    await a.s.bundles.bundle({ phone_number_id: PN, requester: { wa_id: device.waId, device_id: 1 } }),
  );
  t.register(device);
  // The device's first message gives crypto its session (outbound then encrypts without a bundle).
  const env = await t.envelope(PN, device, 'hello');
  const ack = await t.send(env);
  const [first] = await a.s.inbound.process([{ env, seq: ack.seq }]);
  expect(first).toEqual({ emitted: 1, duplicate: false });
}, 60_000);

afterAll(async () => {
  for (const p of procs) {
    await p.engine.close();
    await p.bus.close(1000).catch(() => undefined);
    await p.ds.destroy();
  }
  await t.teardown();
});

const request = (body: string): OutboundRequest => ({
  wamid: `wamid.${randomId()}`,
  phone_number_id: PN,
  to: device.waId,
  content: { type: 'text', text: { body } },
  accepted_at: new Date().toISOString(),
});

/** The device's ciphertexts as DELIVERY stores them, in stream order. */
async function delivery(): Promise<{ wamid: string; type: 'prekey' | 'whisper'; ciphertext: string }[]> {
  return (await t.streamMessages('delivery.ciphertext'))
    .map(
      (m) =>
        m.data as { wamid: string; to: { wa_id: string }; type: 'prekey' | 'whisper'; ciphertext: string },
    )
    .filter((m) => m.to.wa_id === device.waId);
}

const wamids = async () => (await delivery()).map((m) => m.wamid);

/** Delivery ciphertext rows of the session not marked published. */
const unmarked = async (): Promise<string[]> =>
  (
    (await t.ds.query(
      `SELECT source FROM crypto.outbox WHERE event = 'delivery.ciphertext' AND wa_id = $1
       AND published_at IS NULL ORDER BY seq`,
      [device.waId],
    )) as { source: string }[]
  ).map((r) => r.source.slice('out:'.length));

describe('per-session order of business messages', () => {
  it('publishes a ciphertext whose publish failed before a later one of its session, whichever process makes it', async () => {
    // Process A commits c1, then its publish fails (NATS restarting for A).
    const r1 = request('c1');
    a.outage.down = true;
    await expect(a.outbound.process([r1])).rejects.toThrow('reconnecting');
    expect(await wamids()).toEqual([]);
    expect(await unmarked()).toEqual([r1.wamid]);

    // Process B takes the session's next request before A's input is redelivered: under the session
    // lock it publishes c1 first, then its own c2.
    const r2 = request('c2');
    expect(await b.outbound.process([r2])).toEqual([1]);
    expect(await wamids()).toEqual([r1.wamid, r2.wamid]);
    expect(await unmarked()).toEqual([]);

    // A's input comes back (JetStream redelivery): answered from the outbox, the re-publish is dropped
    // as a duplicate, nothing enters DELIVERY twice or out of order.
    a.outage.down = false;
    expect(await a.outbound.process([r1])).toEqual([1]);
    expect(await wamids()).toEqual([r1.wamid, r2.wamid]);

    // A batch that cannot publish what is behind fails and commits nothing: A commits c3 and fails to
    // publish it; B, cut off too, cannot overtake it with c4.
    const r3 = request('c3');
    const r4 = request('c4');
    a.outage.down = true;
    await expect(a.outbound.process([r3])).rejects.toThrow('reconnecting');
    b.outage.down = true;
    await expect(b.outbound.process([r4])).rejects.toThrow('reconnecting');
    expect(await unmarked()).toEqual([r3.wamid]);
    expect(await wamids()).toEqual([r1.wamid, r2.wamid]);
    // Once B's NATS is back, its redelivered c4 goes out after c3.
    b.outage.down = false;
    expect(await b.outbound.process([r4])).toEqual([1]);
    expect(await wamids()).toEqual([r1.wamid, r2.wamid, r3.wamid, r4.wamid]);

    // Within one process too, without any retry of the failed publish: c5's rows stay unmarked and
    // the same process's next batch of the session publishes them first.
    a.outage.down = true;
    const r5 = request('c5');
    const r6 = request('c6');
    await expect(a.outbound.process([r5])).rejects.toThrow('reconnecting');
    a.outage.down = false;
    expect(await a.outbound.process([r6])).toEqual([1]);
    expect(await wamids()).toEqual([r1, r2, r3, r4, r5, r6].map((r) => r.wamid));
    expect(await unmarked()).toEqual([]);

    // The device decrypts them in stream order, each once.
    const bodies: string[] = [];
    for (const c of await delivery()) {
      const p = DevicePlaintext.parse(JSON.parse(await device.decrypt(PN, c.type, c.ciphertext)));
      bodies.push((p.content as { text: { body: string } }).text.body);
    }
    expect(bodies).toEqual(['c1', 'c2', 'c3', 'c4', 'c5', 'c6']);
    expect(t.outboundFailures).toEqual([]);
  }, 60_000);

  it('hands each ciphertext to the bus once when one process runs many batches of a session at once', async () => {
    // The next batch of a session takes its lock the moment the previous one commits, and may read that
    // batch's rows before they are marked published: it must wait for (or skip) them, not publish them
    // again.
    const before = (await wamids()).length;
    a.outage.published.clear();
    const reqs = Array.from({ length: 40 }, (_, i) => request(`p${i}`));
    const results = await Promise.all(reqs.map((r) => a.outbound.process([r])));
    expect(results).toEqual(reqs.map(() => [1]));
    const counts = [...a.outage.published.values()];
    expect(counts).toHaveLength(reqs.length);
    expect(counts.filter((n) => n > 1)).toEqual([]);
    expect(await unmarked()).toEqual([]);
    expect((await wamids()).length).toBe(before + reqs.length);

    // A lookup that read a row just before its mark committed (as after the previous batch's publish):
    // the row this process already stored in DELIVERY is not handed to the bus again.
    const last = reqs[reqs.length - 1];
    await t.ds.query(`UPDATE crypto.outbox SET published_at = NULL WHERE source = $1`, [`out:${last.wamid}`]);
    a.outage.published.clear();
    const next = request('after');
    expect(await a.outbound.process([next])).toEqual([1]);
    expect([...a.outage.published.keys()]).toEqual([`${next.wamid}.${device.waId}.1`]);
    expect(await unmarked()).toEqual([]);

    // Process B never published that row: it would publish it again, and JetStream drops the copy.
    await t.ds.query(`UPDATE crypto.outbox SET published_at = NULL WHERE source = $1`, [`out:${next.wamid}`]);
    b.outage.published.clear();
    const other = request('other');
    expect(await b.outbound.process([other])).toEqual([1]);
    expect([...b.outage.published.keys()]).toEqual([
      `${next.wamid}.${device.waId}.1`,
      `${other.wamid}.${device.waId}.1`,
    ]);
    expect((await wamids()).slice(-2)).toEqual([next.wamid, other.wamid]);
  }, 60_000);
});
