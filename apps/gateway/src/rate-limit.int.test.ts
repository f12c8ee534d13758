import { randomBytes } from 'node:crypto';
import { MemoryStateStore } from '@relay/device-sdk';
import { waitFor } from '@relay/testing';
import { TestWorld } from './test-support/gateway-harness.test';
import { BusinessStandIn } from './test-support/business-stand-in.test';
import { RawSocket, authOf, type RawFrame } from './test-support/raw-socket.test';

// Two gateway processes (one Nest app in this process, one spawned from dist/ as `npm start` runs it)
// share one database and one NATS: their token buckets live in the same JetStream KV bucket.
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
  // Too small a bucket for a lease (4 x 0.1 < 1): exact, like the bundle limit always is.
  RATE_LIMIT_DEVICE_SEND: '4:3000',
  RATE_LIMIT_IP: '60:1000',
  RATE_LIMIT_LEASE_FRACTION: '0.1',
  TRUST_PROXY: 'true',
};
// The most a lease of the IP bucket holds, and so the most both replicas together may admit above the
// exact limit in any window (docs/device-protocol.md §11): floor(60 x 0.1).
const IP_LEASE = 6;

beforeAll(async () => {
  await world.init();
  a = (await world.gateway(limits)).url;
  b = (await world.gatewayProcess(limits)).url;
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
  const started = Date.now();
  const onA = await RawSocket.open(a, auth);
  for (let i = 0; i < 2; i++) {
    const f = sendFrame();
    onA.send(f);
    expect((await onA.next((x) => x.id === f.id)).type).toBe('result');
  }
  const onB = await RawSocket.open(b, auth);
  await waitFor(() => onA.closeCode === 4409);
  // B's sends draw on the same bucket: B is refused once A's two and B's together use it up.
  let acceptedOnB = 0;
  let refused: RawFrame | undefined;
  while (!refused && acceptedOnB < 10) {
    const f = sendFrame();
    onB.send(f);
    const answer = await onB.next((x) => x.id === f.id);
    if (answer.type === 'result') acceptedOnB++;
    else refused = answer;
  }
  expect(refused).toMatchObject({ type: 'error', code: 'rate_limited' });
  expect(acceptedOnB).toBeGreaterThanOrEqual(1);
  expect(2 + acceptedOnB).toBeLessThanOrEqual(4 + Math.floor((Date.now() - started) / 3000));
  const wait = refused?.retry_after_ms as number;
  expect(wait).toBeGreaterThan(0);
  await new Promise((r) => setTimeout(r, wait + 50));
  const f = sendFrame();
  onB.send(f);
  expect((await onB.next((x) => x.id === f.id)).type).toBe('result');
  await onB.close();
});

it('the per-IP bucket is one bucket for both replicas: it trips under a burst, across replicas, and recovers', async () => {
  const count = (base: string) => fetch(`${base}/v1/keys/count`).then((r) => r.status);
  // A burst spread over both replicas: together they let through at most one bucket plus refill plus
  // one lease.
  const t0 = Date.now();
  const statuses = await Promise.all(Array.from({ length: 120 }, (_, i) => count(i % 2 ? a : b)));
  const allowed = statuses.filter((s) => s === 401).length; // passed the limiter, then no credentials
  expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
  expect(allowed).toBeGreaterThan(0);
  expect(allowed).toBeLessThanOrEqual(60 + Math.ceil((Date.now() - t0) / 1000) + IP_LEASE);

  // After a refill, empty the bucket through A only; B, which spent nothing since, is refused too: at
  // most after the tokens of a lease it may still hold from the burst (on a slow machine the burst
  // outlasts a refill, and B may lease that token; a bucket of its own would admit dozens).
  await new Promise((r) => setTimeout(r, 2200));
  let onA = 0;
  while ((await count(a)) === 401) onA++;
  expect(onA).toBeGreaterThanOrEqual(1);
  expect(onA).toBeLessThanOrEqual(4);
  let onB = 0;
  while ((await count(b)) === 401 && onB <= IP_LEASE) onB++;
  expect(onB).toBeLessThanOrEqual(IP_LEASE);

  await new Promise((r) => setTimeout(r, 1200));
  expect(await count(b)).toBe(401);
});

it('under sustained load from one IP on both replicas, leases keep the two within the bucket, its refill and one lease', async () => {
  const ip = '203.0.113.7';
  const count = (base: string) =>
    fetch(`${base}/v1/keys/count`, { headers: { 'x-forwarded-for': ip } }).then((r) => r.status);
  const perReplica = new Map<string, number>([
    [a, 0],
    [b, 0],
  ]);
  const t0 = Date.now();
  // 3 s at 60 requests/s against a bucket of 60 refilling 1/s: both replicas spend leases, get refused,
  // lease again as tokens come back.
  while (Date.now() - t0 < 3000) {
    const round = [a, b, a, b, a, b].map(async (base) => {
      const status = await count(base);
      expect([401, 429]).toContain(status);
      if (status === 401) perReplica.set(base, (perReplica.get(base) ?? 0) + 1);
    });
    await Promise.all([...round, new Promise((r) => setTimeout(r, 100))]);
  }
  const elapsed = Date.now() - t0;
  const allowed = (perReplica.get(a) ?? 0) + (perReplica.get(b) ?? 0);
  expect(allowed).toBeLessThanOrEqual(60 + Math.ceil(elapsed / 1000) + IP_LEASE);
  // What neither could spend: at most what the other held in a lease when the run ended.
  expect(allowed).toBeGreaterThanOrEqual(60 - 2 * IP_LEASE);
  expect(perReplica.get(a)).toBeGreaterThan(0);
  expect(perReplica.get(b)).toBeGreaterThan(0);
});
