import { connect, type NatsConnection } from 'nats';
import pino from 'pino';
import { Registry } from 'prom-client';
import {
  ProtocolValidationError,
  RpcError,
  eventSubject,
  rpcSubject,
  streamName,
  type EventPayload,
} from '@relay/protocol';
import { TEST_NATS_URL, deleteStreams, testSubjectRoot, waitFor } from '@relay/testing';
import { NatsBus, PermanentError } from './bus';
import { encodeJson } from './codec';
import { ensureStreams } from './streams';

const root = testSubjectRoot('bus');
let nc: NatsConnection;
let bus: NatsBus;
const log = pino({ level: 'silent' });

const status = (
  wamid: string,
  status: 'sent' | 'delivered' = 'delivered',
): EventPayload<'status.update'> => ({
  wamid,
  phone_number_id: '1001',
  recipient_id: '4915112345678',
  status,
  timestamp: new Date().toISOString(),
});

beforeAll(async () => {
  nc = await connect({ servers: TEST_NATS_URL });
  const jsm = await nc.jetstreamManager();
  await ensureStreams(jsm, { root, retentionDays: 30 });
  bus = new NatsBus(nc, nc.jetstream(), jsm, root, 'storage', log, new Registry());
});

afterAll(async () => {
  await bus.close(2000);
  await deleteStreams(root);
});

describe('NatsBus on real NATS', () => {
  it('rejects invalid payloads with the typed error and keeps consuming', async () => {
    const seen: string[] = [];
    const handle = await bus.consume('status.update', { durable: 'invalid-test' }, async (p) => {
      seen.push(p.wamid);
    });
    const subject = eventSubject(root, 'status.update', { phone_number_id: '1001' });
    const js = nc.jetstream();
    await js.publish(subject, encodeJson(status('wamid.AAAAAAAAAA01')));
    await js.publish(subject, new TextEncoder().encode('{not json'));
    await js.publish(subject, encodeJson({ ...status('wamid.AAAAAAAAAA02'), status: 'exploded' }));
    await js.publish(subject, encodeJson({ hello: 'world' }));
    await js.publish(subject, encodeJson(status('wamid.AAAAAAAAAA03')));
    await waitFor(() => seen.length === 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual(['wamid.AAAAAAAAAA01', 'wamid.AAAAAAAAAA03']);

    // The bad messages were terminated, not left pending for redelivery.
    const jsm = await nc.jetstreamManager();
    const info = await jsm.consumers.info(streamName(root, 'STATUS'), 'invalid-test');
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(0);
    await handle.stop();
  });

  it('refuses to publish a payload its subject schema forbids', async () => {
    const bad = { ...status('wamid.AAAAAAAAAA04'), recipient_id: 'not-a-number' };
    await expect(bus.publish('status.update', { phone_number_id: '1001' }, bad)).rejects.toBeInstanceOf(
      ProtocolValidationError,
    );
    expect(() => eventSubject(root, 'status.update', { phone_number_id: '10.*' })).toThrow(
      /invalid subject token/,
    );
  });

  it('retries a failing handler and terminates a permanent failure', async () => {
    const attempts = new Map<string, number>();
    const done: string[] = [];
    const handle = await bus.consume(
      'status.update',
      { durable: 'retry-test', filter: ['2002'], retryDelaysMs: [50] },
      async (p) => {
        const n = (attempts.get(p.wamid) ?? 0) + 1;
        attempts.set(p.wamid, n);
        if (p.wamid.endsWith('PERM')) throw new PermanentError('never');
        if (n < 3) throw new Error('transient');
        done.push(p.wamid);
      },
    );
    await bus.publish(
      'status.update',
      { phone_number_id: '2002' },
      { ...status('wamid.RETRYRETRY'), phone_number_id: '2002' },
    );
    await bus.publish(
      'status.update',
      { phone_number_id: '2002' },
      { ...status('wamid.PERMPERMPERM'), phone_number_id: '2002' },
    );
    await waitFor(() => done.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(attempts.get('wamid.RETRYRETRY')).toBe(3);
    expect(attempts.get('wamid.PERMPERMPERM')).toBe(1);
    await handle.stop();
  });

  it("takes a bulk event's whole stream unfiltered, skipping the stream's other events", async () => {
    const requests: string[] = [];
    const failures: string[] = [];
    const all = await bus.consume('outbound.request', { durable: 'bulk-test' }, async (r) => {
      requests.push(r.wamid);
    });
    const some = await bus.consume('outbound.failure', { durable: 'bulk-failures' }, async (f) => {
      failures.push(f.wamid);
    });
    const jsm = await nc.jetstreamManager();
    const stream = streamName(root, 'OUTBOUND');
    // No subject filter for the bulk event (NATS then counts its pending by sequence); the rare one keeps its own.
    expect((await jsm.consumers.info(stream, 'bulk-test')).config.filter_subject ?? '').toBe('');
    expect((await jsm.consumers.info(stream, 'bulk-failures')).config.filter_subject).toBe(
      `${root}.v1.outbound.failure.*`,
    );
    const at = new Date().toISOString();
    const pn = { phone_number_id: '4004' };
    const request = (wamid: string) => ({
      wamid,
      phone_number_id: '4004',
      to: '4915112345678',
      content: { type: 'text' as const, text: { body: 'hi' } },
      accepted_at: at,
    });
    await bus.publish('outbound.request', pn, request('wamid.BULKBULK0001'));
    await bus.publish('outbound.failure', pn, {
      wamid: 'wamid.BULKBULK0001',
      phone_number_id: '4004',
      to: '4915112345678',
      reason: 'no_devices',
      detail: 'none',
      failed_at: at,
    });
    await bus.publish('outbound.request', pn, request('wamid.BULKBULK0002'));
    await waitFor(() => requests.length === 2 && failures.length === 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(requests).toEqual(['wamid.BULKBULK0001', 'wamid.BULKBULK0002']);
    expect(failures).toEqual(['wamid.BULKBULK0001']);
    // The skipped failure was acknowledged, not left pending for redelivery.
    expect((await jsm.consumers.info(stream, 'bulk-test')).num_ack_pending).toBe(0);
    await all.stop();
    await some.stop();
  });

  it('dedupes a re-published event with the same message id', async () => {
    const seen: string[] = [];
    const handle = await bus.consume(
      'status.update',
      { durable: 'dedupe-test', filter: ['3003'] },
      async (p) => {
        seen.push(p.wamid);
      },
    );
    const p = { ...status('wamid.DEDUPEDEDUPE'), phone_number_id: '3003' };
    const a = await bus.publish('status.update', { phone_number_id: '3003' }, p, { msgId: 'same-id' });
    const b = await bus.publish('status.update', { phone_number_id: '3003' }, p, { msgId: 'same-id' });
    expect(b.duplicate).toBe(true);
    expect(a.duplicate).toBe(false);
    await waitFor(() => seen.length === 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toHaveLength(1);
    await handle.stop();
  });

  it("keeps a slow handler's message with in-progress signals past a short ack wait", async () => {
    const runs: string[] = [];
    const handle = await bus.consume(
      'status.update',
      { durable: 'progress-test', filter: ['4004'], ackWaitMs: 1000, inProgressEveryMs: 300 },
      async (p) => {
        runs.push(p.wamid);
        await new Promise((r) => setTimeout(r, 2500));
      },
    );
    const p = { ...status('wamid.SLOWSLOWSLOW'), phone_number_id: '4004' };
    await bus.publish('status.update', { phone_number_id: '4004' }, p);
    await waitFor(() => runs.length === 1);
    await new Promise((r) => setTimeout(r, 3000));
    // Without the signals JetStream would have redelivered it after 1 s, to a second run.
    expect(runs).toEqual(['wamid.SLOWSLOWSLOW']);
    await handle.stop();
  });

  it("reads one subject's stored events back in order, between two sequences", async () => {
    const pub = (wamid: string, deviceId: number) => {
      const to = { wa_id: '4915112345678', device_id: deviceId };
      return bus.publish('delivery.ciphertext', to, {
        wamid,
        phone_number_id: '1001',
        to,
        type: 'whisper',
        ciphertext: 'AAAA',
        created_at: new Date().toISOString(),
      });
    };
    const first = await pub('wamid.READBACK0001', 1);
    await pub('wamid.READBACKXXXX', 2);
    await pub('wamid.READBACK0002', 1);
    const last = await pub('wamid.READBACK0003', 1);
    const to = { wa_id: '4915112345678', device_id: 1 };
    const read = await bus.readSubject('delivery.ciphertext', to, first.seq, last.seq);
    expect(read.map((e) => e.payload.wamid)).toEqual(['wamid.READBACK0001', 'wamid.READBACK0002']);
    expect(read[0]).toMatchObject({
      streamSeq: first.seq,
      subject: eventSubject(root, 'delivery.ciphertext', to),
    });
    expect(await bus.readSubject('delivery.ciphertext', { ...to, device_id: 3 }, 1, last.seq + 1)).toEqual(
      [],
    );
  });

  it('answers RPCs with validated data and typed errors, even for garbage requests', async () => {
    bus.respond('storage.ack', async (req) => {
      if (req.to.device_id === 9) throw new RpcError('not_found', 'no such device');
      return { removed: req.wamids.length };
    });
    await nc.flush();
    const ok = await bus.request('storage.ack', {
      to: { wa_id: '4915112345678', device_id: 1 },
      wamids: ['wamid.AAAAAAAAAA01'],
    });
    expect(ok).toEqual({ removed: 1 });
    await expect(
      bus.request('storage.ack', {
        to: { wa_id: '4915112345678', device_id: 9 },
        wamids: ['wamid.AAAAAAAAAA01'],
      }),
    ).rejects.toMatchObject({ code: 'not_found' });
    const raw = await nc.request(rpcSubject(root, 'storage.ack'), new TextEncoder().encode('garbage'), {
      timeout: 2000,
    });
    expect(JSON.parse(new TextDecoder().decode(raw.data))).toMatchObject({
      ok: false,
      error: { code: 'invalid_payload' },
    });
    // Still serving after the garbage.
    await expect(
      bus.request('storage.ack', {
        to: { wa_id: '4915112345678', device_id: 2 },
        wamids: ['wamid.AAAAAAAAAA01', 'wamid.AAAAAAAAAA02'],
      }),
    ).resolves.toEqual({ removed: 2 });
  });
});
