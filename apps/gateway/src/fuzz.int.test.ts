import WebSocket from 'ws';
import { MemoryStateStore, type DeviceClient } from '@relay/device-sdk';
import { waitFor } from '@relay/testing';
import { TestWorld } from './test-support/gateway-harness.test';
import { StorageStandIn } from './test-support/storage-stand-in.test';
import { BusinessStandIn } from './test-support/business-stand-in.test';
import { RawSocket, authOf } from './test-support/raw-socket.test';
import { frameCase, httpCase, rng } from './test-support/fuzz-cases.test';

// Thousands of malformed frames and requests against a real gateway (real Postgres, NATS, HTTP,
// WebSocket), while a well-behaved device keeps sending and receiving. crypto and storage are
// stand-ins on real NATS (test-support/). Limits are raised so every bad input reaches validation.
const world = new TestWorld('gwfuzz');
const PNID = '1500000004';
const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const FRAMES = 3000;
const REQUESTS = 1500;
let url: string;
let storage: StorageStandIn;
let business: BusinessStandIn;
const goodStore = new MemoryStateStore();
let good: DeviceClient;
let fuzzAuth: string;
const fuzzStore = new MemoryStateStore();

beforeAll(async () => {
  await world.init();
  ({ url } = await world.gateway({
    RATE_LIMIT_CONNECTION_FRAMES: '100000:1',
    RATE_LIMIT_IP: '100000:1',
    RATE_LIMIT_DEVICE_SEND: '100000:1',
    WS_MAX_FRAME_BYTES: '65536',
  }));
  storage = new StorageStandIn(await world.bus('storage')).start();
  business = await new BusinessStandIn(await world.bus('crypto'), PNID).start();
  good = await world.device(url, '4915100000031', { store: goodStore });
  await world.device(url, '4915100000032', { store: fuzzStore });
  fuzzAuth = authOf(fuzzStore);
  await good.connect();
});

afterAll(() => world.close());

/** The well-behaved device: one round trip (send to the business, receive its reply) per call. */
async function roundTrip(n: number): Promise<void> {
  const received = new Promise<string>((resolve) => good.once('message', (m) => resolve(m.wamid)));
  const sent = await good.sendText(PNID, `ping ${n}`);
  await waitFor(() => business.received.some((r) => r.envelope.envelope_id === sent.envelope_id));
  const reply = await business.encryptFor({ wa_id: '4915100000031', device_id: 1 }, `pong ${n}`);
  storage.enqueue({ wa_id: '4915100000031', device_id: 1 }, reply);
  expect(await received).toBe(reply.wamid);
}

it(`answers ${FRAMES} malformed WebSocket frames with the documented error, in order`, async () => {
  const keysBefore = await good.keyCounts();
  const sock = await RawSocket.open(url, fuzzAuth);
  const r = rng(SEED);
  const cases = Array.from({ length: FRAMES }, (_, i) => frameCase(r, i));
  const background = (async () => {
    for (let i = 0; i < 5; i++) await roundTrip(i);
  })();
  for (let i = 0; i < cases.length; i++) {
    sock.send(cases[i].data);
    if (i % 500 === 0) await new Promise((res) => setTimeout(res, 5));
  }
  await waitFor(() => sock.frames.length >= FRAMES, 30_000);
  const errors = sock.frames.filter((f) => f.type === 'error');
  expect(errors).toHaveLength(FRAMES);
  const mismatches = cases
    .map((c, i) => ({ c, got: errors[i] }))
    .filter(({ c, got }) => got.code !== c.code || got.id !== c.id || typeof got.message !== 'string');
  expect(
    mismatches.slice(0, 3).map(({ c, got }) => ({ sent: String(c.data).slice(0, 120), want: c.code, got })),
  ).toEqual([]);
  expect(sock.closeCode).toBeUndefined(); // malformed frames are answered, not punished with a close
  await background;
  expect(await good.keyCounts()).toEqual(keysBefore);
  await sock.close();
});

it('closes a connection that sends a frame over the size limit (1009) and nothing else changes', async () => {
  for (let i = 0; i < 3; i++) {
    const sock = await RawSocket.open(url, fuzzAuth);
    sock.send(JSON.stringify({ type: 'send', id: 'oversize-1', pad: 'x'.repeat(70_000) }));
    await waitFor(() => sock.closeCode !== undefined);
    expect(sock.closeCode).toBe(1009);
  }
  await roundTrip(100);
});

it('refuses WebSocket upgrades with bad credentials (401) or a wrong path (404)', async () => {
  const attempts = [
    {
      path: '/v1/websocket',
      auth: 'Basic ' + Buffer.from('4915100000031.1:wrong').toString('base64'),
      status: 401,
    },
    { path: '/v1/websocket', auth: 'garbage', status: 401 },
    { path: '/v1/websocket', auth: '', status: 401 },
    { path: '/v2/websocket', auth: fuzzAuth, status: 404 },
  ];
  for (const a of attempts) {
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${url.replace(/^http/, 'ws')}${a.path}`, {
        headers: a.auth ? { authorization: a.auth } : {},
      });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => undefined);
    });
    expect(status).toBe(a.status);
  }
});

it(`answers ${REQUESTS} malformed HTTP requests with the documented error body`, async () => {
  const r = rng(SEED + 1);
  const keysBefore = await good.keyCounts();
  const fuzzCreds = Buffer.from(fuzzAuth.slice(6), 'base64').toString();
  const otherUser =
    'Basic ' + Buffer.from(fuzzCreds.replace(/^\d+\.1/, '4915100000031.1')).toString('base64');
  const cases = Array.from({ length: REQUESTS }, () => httpCase(r, fuzzAuth, otherUser));
  const background = roundTrip(200);
  const bad: unknown[] = [];
  for (let i = 0; i < cases.length; i += 50) {
    await Promise.all(
      cases.slice(i, i + 50).map(async (c) => {
        const res = await fetch(`${url}${c.path}`, { method: c.method, headers: c.headers, body: c.body });
        const body = (await res.json().catch(() => null)) as {
          error?: { code?: string; message?: string };
        } | null;
        if (
          res.status !== c.status ||
          body?.error?.code !== c.code ||
          typeof body.error.message !== 'string'
        ) {
          bad.push({ path: c.path, want: [c.status, c.code], got: [res.status, body] });
        }
      }),
    );
  }
  expect(bad.slice(0, 3)).toEqual([]);
  await background;
  expect(await good.keyCounts()).toEqual(keysBefore);
  expect(
    await (await fetch(`${url}/v1/keys/count`, { headers: { authorization: fuzzAuth } })).json(),
  ).toEqual({
    prekeys: 5,
    kyber_prekeys: 5,
  });
});

it("acknowledging or reading another user's message ids changes nothing of theirs", async () => {
  const victim = { wa_id: '4915100000031', device_id: 1 };
  storage.enqueue(
    victim,
    { wamid: 'wamid.VICTIMVICTIMVICTIM', phone_number_id: PNID, type: 'whisper', ciphertext: 'AAAA' },
    false,
  );
  const sock = await RawSocket.open(url, fuzzAuth);
  sock.send({ type: 'ack', id: 'steal-1', wamids: ['wamid.VICTIMVICTIMVICTIM'] });
  expect((await sock.next((f) => f.id === 'steal-1')).type).toBe('result');
  expect(storage.queued(victim).map((i) => i.wamid)).toContain('wamid.VICTIMVICTIMVICTIM');
  await sock.close();
});
