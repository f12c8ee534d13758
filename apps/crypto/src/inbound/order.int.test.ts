import pino from 'pino';
import { Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import { NatsBus, PREV_SUBJECT_SEQ_HEADER, SubjectSequencer, directGet, systemClock } from '@relay/platform';
import { DevicePlaintext, streamName, type DeviceEnvelope } from '@relay/protocol';
import { CryptoConfigSchema } from '../config';
import { cryptoDataSource } from '../data-source';
import { CryptoServices } from '../services';
import { SignalWorkerPool } from '../signal/worker-pool';
import { DeviceClient } from '../testing/device-client';
import { CryptoTestEnv, randomId, until } from '../testing/harness.test';

// Per-session order at the processor: the test decides which envelopes a "process" hands in, as the
// consumer would after another process took some and died. Real Postgres, NATS/JetStream (the
// envelopes are in the stream, read back by direct get) and libsignal on both sides.
const t = new CryptoTestEnv();
const PN = '15550300';
let ds: DataSource;
let engine: SignalWorkerPool;
let s: CryptoServices;
let bus: NatsBus;
const device = new DeviceClient('491790000001', 1);

beforeAll(async () => {
  await t.setup('cryptoorder');
  const config = CryptoConfigSchema.parse(t.env());
  ds = cryptoDataSource(t.db.url, 4);
  await ds.initialize();
  const jsm = await t.nc.jetstreamManager();
  const log = pino({ level: 'silent' });
  bus = new NatsBus(t.nc, t.nc.jetstream(), jsm, t.root, 'crypto', log, new Registry());
  engine = new SignalWorkerPool(1);
  s = new CryptoServices(ds, bus, engine, config, systemClock, log);
  await s.provisioning.provision(PN);
  const bundle = await s.bundles.bundle({
    phone_number_id: PN,
    requester: { wa_id: device.waId, device_id: device.deviceId },
  });
  await device.startSession(PN, bundle);
  t.register(device);
}, 60_000);

afterAll(async () => {
  await engine?.close();
  await ds?.destroy();
  await t.teardown();
});

/** The device encrypts a text and the gateway stand-in stores it in the stream; nothing consumes it. */
async function published(body: string): Promise<{ env: DeviceEnvelope; seq: number }> {
  const env = await t.envelope(PN, device, body);
  const ack = await t.send(env);
  return { env, seq: ack.seq };
}

/**
 * As the gateway publishes: stamped with the session's previous envelope. The input is what the
 * consumer hands crypto, predecessor read from the stored message's header.
 */
async function stamped(body: string): Promise<{ env: DeviceEnvelope; seq: number; prev?: number }> {
  const env = await t.envelope(PN, device, body);
  const ack = await new SubjectSequencer(t.bus, 'device.envelope').publish(
    { phone_number_id: PN, wa_id: device.waId, device_id: device.deviceId },
    env,
    { msgId: `${device.waId}.${env.envelope_id}` },
  );
  const jsm = await t.nc.jetstreamManager();
  const m = await directGet(jsm).getMessage(streamName(t.root, 'DEVICE_ENVELOPES'), { seq: ack.seq });
  return { env, seq: ack.seq, prev: Number(m.header?.get(PREV_SUBJECT_SEQ_HEADER)) };
}

/** The business answers; the device decrypts it, so its next message starts a new ratchet chain. */
async function reply(body: string): Promise<void> {
  const wamid = `wamid.${randomId()}`;
  const [r] = await s.outbound.process([
    {
      wamid,
      phone_number_id: PN,
      to: device.waId,
      content: { type: 'text', text: { body } },
      accepted_at: new Date().toISOString(),
    },
  ]);
  expect(r).toBe(1);
  const c = await until(() => t.deliveries.find((x) => x.payload.wamid === wamid));
  const p = DevicePlaintext.parse(JSON.parse(await device.decrypt(PN, c.payload.type, c.payload.ciphertext)));
  expect(p.content).toEqual({ type: 'text', text: { body } });
}

/** Bodies of the inbound messages the stream holds from this device, in stream order. */
async function inboundBodies(): Promise<string[]> {
  const all = await t.streamMessages('inbound.message');
  return all
    .map((m) => m.data as { from: { wa_id: string }; content: { text?: { body: string } } })
    .filter((m) => m.from.wa_id === device.waId)
    .map((m) => m.content.text?.body ?? '?');
}

const cursor = async () =>
  Number(
    (
      await ds.query(`SELECT last_seq FROM crypto.sessions WHERE phone_number_id = $1 AND wa_id = $2`, [
        PN,
        device.waId,
      ])
    )[0].last_seq,
  );

describe('per-session order of device envelopes', () => {
  it('applies an envelope another process still holds before later ones, however far the session ratchets', async () => {
    const m0 = await published('m0');
    await s.inbound.process([m0]);
    expect(await cursor()).toBe(m0.seq);
    await reply('r0');
    // m1 is in the stream but its consumer died holding it (no process hands it in for now).
    const held = await published('m1');
    // Seven turns of the ratchet: each answered message makes the next one start a new chain, far more
    // than the five receiver chains libsignal keeps, so m1 could not be decrypted after them.
    const later: { env: DeviceEnvelope; seq: number }[] = [];
    for (let i = 2; i <= 8; i++) {
      const m = await published(`m${i}`);
      const [outcome] = await s.inbound.process([m]);
      expect(outcome).toEqual({ emitted: 1, duplicate: false });
      later.push(m);
      await reply(`r${i}`);
    }
    expect(later.at(-1)?.env.type).toBe('whisper');
    // The held envelope was applied before m2 (read back from the stream), once, in order. (process()
    // resolves after JetStream stored its events, so the stream is complete here.)
    expect(await inboundBodies()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8']);
    expect(t.failures).toEqual([]);
    expect(await cursor()).toBe(later.at(-1)?.seq);

    // Its redelivery (JetStream, after the ack wait) is a duplicate: the recorded event again, same id.
    const [late] = await s.inbound.process([held]);
    expect(late).toEqual({ emitted: 1, duplicate: true });
    const m1 = (await t.streamMessages('inbound.message')).filter(
      (m) => (m.data as { envelope_id: string }).envelope_id === held.env.envelope_id,
    );
    expect(m1).toHaveLength(1);
    expect(t.failures).toEqual([]);
  }, 60_000);

  it("applies a batch's envelopes of one session in stream order, with the ones between read back", async () => {
    const a = await published('n1');
    const b = await published('n2');
    const c = await published('n3');
    const d = await published('n4');
    // One batch got n4 and n2 (in that order); n1 and n3 are held elsewhere.
    const outcomes = await s.inbound.process([d, b]);
    expect(outcomes).toEqual([
      { emitted: 1, duplicate: false },
      { emitted: 1, duplicate: false },
    ]);
    expect((await inboundBodies()).slice(9)).toEqual(['n1', 'n2', 'n3', 'n4']);
    expect(await cursor()).toBe(d.seq);
    // The holders hand theirs in later: duplicates, nothing new is decrypted or emitted.
    expect(await s.inbound.process([a, c])).toEqual([
      { emitted: 1, duplicate: true },
      { emitted: 1, duplicate: true },
    ]);
    await reply('after');
    const next = await published('n5');
    expect(await s.inbound.process([next])).toEqual([{ emitted: 1, duplicate: false }]);
    expect((await inboundBodies()).slice(9)).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
    expect(t.failures).toEqual([]);
  }, 60_000);

  it('reads the stream back only when a stamped predecessor is really missing', async () => {
    // Stamped envelopes are found along their stamps (direct get by sequence), never by scanning.
    const scans = jest.spyOn(bus, 'readSubject');
    const reads = jest.spyOn(bus, 'readChainBack');
    try {
      // The predecessor of q1 is the session's last applied envelope: nothing to read.
      const q1 = await stamped('q1');
      expect(q1.prev).toBe(await cursor());
      expect(await s.inbound.process([q1])).toEqual([{ emitted: 1, duplicate: false }]);
      // A batch holding q2 and q3 in order chains back to the cursor: nothing to read either.
      const q2 = await stamped('q2');
      const q3 = await stamped('q3');
      expect(await s.inbound.process([q3, q2])).toHaveLength(2);
      expect(reads).not.toHaveBeenCalled();
      // q4 is held elsewhere; q5 names it as its predecessor, so q4 is read back and applied first.
      await reply('r-q');
      const q4 = await stamped('q4');
      const q5 = await stamped('q5');
      expect(q5.prev).toBe(q4.seq);
      expect(await s.inbound.process([q5])).toEqual([{ emitted: 1, duplicate: false }]);
      expect(reads).toHaveBeenCalledTimes(1);
      expect(await s.inbound.process([q4])).toEqual([{ emitted: 1, duplicate: true }]);
      expect(reads).toHaveBeenCalledTimes(1);
      expect(scans).not.toHaveBeenCalled();
      expect((await inboundBodies()).slice(-5)).toEqual(['q1', 'q2', 'q3', 'q4', 'q5']);
      expect(t.failures).toEqual([]);
    } finally {
      reads.mockRestore();
      scans.mockRestore();
    }
  }, 60_000);

  it('falls back to scanning the subject when a held envelope carries no stamp (an older gateway)', async () => {
    await reply('r-u');
    // Published as an older gateway did: no predecessor stamp, held by a process that died.
    const env = await t.envelope(PN, device, 'u1');
    const ack = await t.bus.publish(
      'device.envelope',
      { phone_number_id: PN, wa_id: device.waId, device_id: device.deviceId },
      env,
      { msgId: `${device.waId}.${env.envelope_id}` },
    );
    const u2 = await stamped('u2');
    expect(u2.prev).toBe(ack.seq);
    const scans = jest.spyOn(bus, 'readSubject');
    try {
      expect(await s.inbound.process([u2])).toEqual([{ emitted: 1, duplicate: false }]);
      expect(scans).toHaveBeenCalledTimes(1);
      expect((await inboundBodies()).slice(-2)).toEqual(['u1', 'u2']);
      expect(t.failures).toEqual([]);
    } finally {
      scans.mockRestore();
    }
  }, 60_000);
});
