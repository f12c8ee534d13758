import { randomBytes } from 'node:crypto';
import { MemoryStateStore } from '@relay/device-sdk';
import { waitFor } from '@relay/testing';
import { TestWorld } from './test-support/gateway-harness.test';
import { BusinessStandIn } from './test-support/business-stand-in.test';
import { RawSocket, authOf } from './test-support/raw-socket.test';

// Two gateway replicas (two Nest apps in this process, each with its own NATS connection and HTTP
// port) share one database and one NATS: their token buckets live in the same JetStream KV bucket.
// crypto is a stand-in on real NATS (test-support/business-stand-in).
const world = new TestWorld('gwrate');
const PNID = '1500000003';
const QUIET_PNID = '1599999999'; // no consumer: envelopes just have to be stored
let a: string;
let b: string;
const store = new MemoryStateStore();
let auth: string;

const limits = {
  RATE_LIMIT_DEVICE_BUNDLE: '3:1500',
  RATE_LIMIT_DEVICE_SEND: '4:3000',
  RATE_LIMIT_IP: '60:100',
};

beforeAll(async () => {
  await world.init();
  a = (await world.gateway(limits)).url;
  b = (await world.gateway(limits)).url;
  await new BusinessStandIn(await world.bus('crypto'), PNID).start();
  await world.device(a, '4915100000021', { store });
  auth = authOf(store);
});

afterAll(() => world.close());

const bundle = (base: string) =>
  fetch(`${base}/v1/businesses/${PNID}/bundle`, { headers: { authorization: auth } });

it('bundle fetches share one per-device bucket across both replicas, and it refills', async () => {
  expect((await bundle(a)).status).toBe(200);
  expect((await bundle(a)).status).toBe(200);
  expect((await bundle(b)).status).toBe(200);
  const limited = await bundle(b);
  expect(limited.status).toBe(429);
  expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  const body = (await limited.json()) as { error: { code: string; retry_after_ms: number } };
  expect(body.error.code).toBe('rate_limited');
  expect(body.error.retry_after_ms).toBeGreaterThan(0);
  expect((await bundle(a)).status).toBe(429);
  await new Promise((r) => setTimeout(r, body.error.retry_after_ms + 50));
  expect((await bundle(a)).status).toBe(200);
});

const sendFrame = () => ({
  type: 'send',
  id: randomBytes(9).toString('base64url'),
  to: QUIET_PNID,
  ciphertext_type: 'whisper',
  ciphertext: randomBytes(60).toString('base64'),
});

it('envelope sends share the per-device bucket across replicas; a connection on B replaces the one on A', async () => {
  const onA = await RawSocket.open(a, auth);
  for (let i = 0; i < 2; i++) {
    const f = sendFrame();
    onA.send(f);
    expect((await onA.next((x) => x.id === f.id)).type).toBe('result');
  }
  const onB = await RawSocket.open(b, auth);
  await waitFor(() => onA.closeCode === 4409);
  const results = [];
  for (let i = 0; i < 3; i++) {
    const f = sendFrame();
    onB.send(f);
    results.push(await onB.next((x) => x.id === f.id));
  }
  expect(results.map((r) => r.type)).toEqual(['result', 'result', 'error']);
  expect(results[2]).toMatchObject({ code: 'rate_limited' });
  const wait = results[2].retry_after_ms as number;
  expect(wait).toBeGreaterThan(0);
  await new Promise((r) => setTimeout(r, wait + 50));
  const f = sendFrame();
  onB.send(f);
  expect((await onB.next((x) => x.id === f.id)).type).toBe('result');
  await onB.close();
});

it('the per-IP bucket trips on both replicas under a burst and recovers', async () => {
  const statuses = await Promise.all(
    Array.from({ length: 120 }, (_, i) =>
      fetch(`${i % 2 ? a : b}/v1/keys/count`).then((r) => [i % 2, r.status] as const),
    ),
  );
  const limitedOn = new Set(statuses.filter(([, s]) => s === 429).map(([side]) => side));
  expect(limitedOn).toEqual(new Set([0, 1]));
  // Everything not limited reached authentication (no credentials: 401) and nothing else.
  expect(statuses.every(([, s]) => s === 429 || s === 401)).toBe(true);
  expect(statuses.filter(([, s]) => s === 401).length).toBeLessThan(90);
  await new Promise((r) => setTimeout(r, 1500));
  expect((await fetch(`${a}/v1/keys/count`)).status).toBe(401);
  expect((await fetch(`${b}/v1/keys/count`)).status).toBe(401);
});
