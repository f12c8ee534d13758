import { connect, type NatsConnection } from 'nats';
import pino from 'pino';
import { Registry } from 'prom-client';
import { FakeClock, NatsBus } from '@relay/platform';
import { TEST_NATS_URL, testSubjectRoot } from '@relay/testing';
import type { GatewayConfig } from '../config';
import { GatewayError } from '../http/gateway-error';
import { RateLimiter, type LimitName } from './rate-limiter';
import type { BucketSpec } from './token-bucket';

// RateLimiter on the real NATS KV bucket, several "replicas" (limiters, each on its own NATS
// connection) sharing it. Time is a FakeClock so refills and lease expiry are exact; the two-OS-process
// case is in ../rate-limit.int.test.ts.
const root = testSubjectRoot('rlease');
const silent = pino({ level: 'silent' });
const conns: NatsConnection[] = [];

interface Replica {
  limiter: RateLimiter;
  /** NATS requests this replica made (KV reads and writes). */
  requests: () => number;
  nc: NatsConnection;
}

async function replica(clock: FakeClock, spec: BucketSpec, fraction = 0.1): Promise<Replica> {
  const nc = await connect({ servers: TEST_NATS_URL });
  conns.push(nc);
  let requests = 0;
  const request = nc.request.bind(nc);
  nc.request = (...args: Parameters<NatsConnection['request']>) => {
    requests++;
    return request(...args);
  };
  const bus = new NatsBus(
    nc,
    nc.jetstream(),
    await nc.jetstreamManager(),
    root,
    'gateway',
    silent,
    new Registry(),
  );
  const config = {
    RATE_LIMIT_IP: spec,
    RATE_LIMIT_DEVICE_SEND: spec,
    RATE_LIMIT_DEVICE_BUSINESS_SEND: spec,
    RATE_LIMIT_DEVICE_BUNDLE: spec,
    RATE_LIMIT_VERIFICATION: spec,
    RATE_LIMIT_LEASE_FRACTION: fraction,
  } as GatewayConfig;
  const limiter = new RateLimiter(bus, config, clock, silent);
  await limiter.onModuleInit();
  return { limiter, requests: () => requests, nc };
}

let keyNo = 0;
const freshKey = () => `k${keyNo++}`;

async function takeMany(r: Replica, limit: LimitName, key: string, n: number, concurrent = false) {
  const results: (number | undefined)[] = [];
  if (concurrent)
    results.push(...(await Promise.all(Array.from({ length: n }, () => r.limiter.take(limit, key)))));
  else for (let i = 0; i < n; i++) results.push(await r.limiter.take(limit, key));
  return { allowed: results.filter((x) => x === undefined).length, results };
}

afterAll(async () => {
  const jsm = await conns[0]?.jetstreamManager();
  await jsm?.streams.delete(`KV_${RateLimiter.bucketName(root)}`).catch(() => undefined);
  for (const nc of conns) await nc.close();
});

describe('one replica', () => {
  it('lets exactly the bucket through and spends leased tokens without NATS round trips', async () => {
    const clock = new FakeClock();
    const r = await replica(clock, { size: 100, permitMs: 1000 });
    expect(r.limiter.lease('device_send')).toEqual({ max: 10, ms: 10_000 });
    const key = freshKey();
    const seq = await takeMany(r, 'device_send', key, 150);
    expect(seq.allowed).toBe(100);
    expect(seq.results.slice(0, 100).every((x) => x === undefined)).toBe(true);
    expect(seq.results[100]).toBe(1000);
    // Leases of 3, 6, then 10 tokens: about one request per 11 takes instead of two per take.
    expect(r.requests()).toBeLessThanOrEqual(16);
    // A burst of concurrent takes on another key: still exactly the bucket.
    const burst = await takeMany(r, 'device_send', freshKey(), 150, true);
    expect(burst.allowed).toBe(100);
  });

  it('refills one token per interval, and a full refill gives the whole bucket back', async () => {
    const clock = new FakeClock();
    const r = await replica(clock, { size: 20, permitMs: 100 });
    const key = freshKey();
    expect((await takeMany(r, 'ip', key, 25)).allowed).toBe(20);
    const wait = await r.limiter.take('ip', key);
    expect(wait).toBe(100);
    clock.advance(wait ?? 0);
    expect(await r.limiter.take('ip', key)).toBeUndefined();
    expect(await r.limiter.take('ip', key)).toBeGreaterThan(0);
    clock.advance(20 * 100);
    expect((await takeMany(r, 'ip', key, 25)).allowed).toBe(20);
  });

  it('keeps verification and bundle limits exact: a compare-and-set per request, no lease', async () => {
    const clock = new FakeClock();
    const r = await replica(clock, { size: 100, permitMs: 1000 }, 0.5);
    for (const limit of ['verification', 'device_bundle'] as const) {
      expect(r.limiter.lease(limit)).toEqual({ max: 0, ms: 0 });
      const key = freshKey();
      const before = r.requests();
      expect((await takeMany(r, limit, key, 30)).allowed).toBe(30);
      // One write per take and no read: a create, then updates on top of its own last write.
      expect(r.requests() - before).toBe(30);
      // Another replica sees every one of those tokens gone.
      const other = await replica(clock, { size: 100, permitMs: 1000 }, 0.5);
      expect((await takeMany(other, limit, key, 80)).allowed).toBe(70);
    }
  });

  it('fails closed: with NATS unreachable a take is refused 503, except from a lease already held', async () => {
    const clock = new FakeClock();
    const r = await replica(clock, { size: 100, permitMs: 1000 });
    const leasedKey = freshKey();
    expect(await r.limiter.take('device_send', leasedKey)).toBeUndefined(); // leases 3 more
    await r.nc.close();
    const unavailable = expect.objectContaining({ code: 'unavailable' });
    await expect(r.limiter.consume('device_send', freshKey())).rejects.toEqual(unavailable);
    await expect(r.limiter.consume('verification', freshKey())).rejects.toBeInstanceOf(GatewayError);
    expect((await takeMany(r, 'device_send', leasedKey, 3)).allowed).toBe(3);
    await expect(r.limiter.consume('device_send', leasedKey)).rejects.toEqual(unavailable);
  });
});

describe('replicas sharing a bucket', () => {
  it('a lease is taken from the shared bucket: what one replica holds, the other cannot spend', async () => {
    const clock = new FakeClock();
    const spec = { size: 10, permitMs: 1000 };
    const a = await replica(clock, spec, 0.5);
    const b = await replica(clock, spec, 0.5);
    const key = freshKey();
    expect(await a.limiter.take('ip', key)).toBeUndefined(); // A holds 2 more
    expect((await takeMany(b, 'ip', key, 10)).allowed).toBe(7);
    expect((await takeMany(a, 'ip', key, 5)).allowed).toBe(2);
  });

  it('a lease runs ahead of the bucket by at most its size, and an unspent one expires', async () => {
    const clock = new FakeClock();
    const spec = { size: 20, permitMs: 1000 };
    const a = await replica(clock, spec, 0.25);
    const b = await replica(clock, spec, 0.25);
    const { max, ms } = a.limiter.lease('ip');
    expect({ max, ms }).toEqual({ max: 5, ms: 5000 });
    const key = freshKey();
    // A's leases grow while it spends them (2, then 4 tokens ahead); then the bucket refills.
    expect((await takeMany(a, 'ip', key, 1 + 2 + 1 + 4)).allowed).toBe(8);
    clock.advance(8000);
    // A takes one and holds the most a lease may (5); by the time that lease expires the bucket is
    // nearly full again, and both are spent at once: that is the documented overshoot.
    expect(await a.limiter.take('ip', key)).toBeUndefined();
    clock.advance(ms - 1);
    const inWindow = (await takeMany(b, 'ip', key, 30)).allowed + (await takeMany(a, 'ip', key, 30)).allowed;
    expect(inWindow).toBe(18 + 5);
    expect(inWindow).toBeLessThanOrEqual(spec.size + max);

    // A lease left unspent past its expiry is dropped: A asks NATS again and is refused.
    const k2 = freshKey();
    expect(await a.limiter.take('ip', k2)).toBeUndefined(); // A holds 2
    clock.advance(ms);
    expect((await takeMany(b, 'ip', k2, 30)).allowed).toBe(20);
    const before = a.requests();
    expect(await a.limiter.take('ip', k2)).toBeGreaterThan(0);
    expect(a.requests()).toBeGreaterThan(before);
  });

  it('two replicas under an uneven, bursty load never go over size + refill + one lease in any window', async () => {
    const clock = new FakeClock();
    const spec = { size: 40, permitMs: 100 };
    const fraction = 0.25;
    const a = await replica(clock, spec, fraction);
    const b = await replica(clock, spec, fraction);
    const { max } = a.limiter.lease('device_business_send');
    expect(max).toBe(10);
    const key = freshKey();
    const grants: number[] = [];
    // Two cycles of 360 steps of 25 ms: overload with one replica or the other idle (holding what it
    // leased); a pause, so that a light phase then leases whole tokens it does not spend; then both idle
    // for 4 s, until the bucket is full again, so a lease that outlived its lifetime would be spent on
    // top of a full bucket.
    const loadAt = (c: number): [number, number] => {
      const burstyB = c % 7 === 0 ? 12 : 1;
      if (c < 20 || (c >= 40 && c < 60)) return [3, burstyB];
      if (c < 40) return [0, burstyB];
      if (c < 80) return [3, 0];
      if (c >= 160 && c < 200) return [c % 8 === 0 ? 1 : 0, c % 8 === 4 ? 1 : 0];
      return [0, 0];
    };
    for (let step = 0; step < 720; step++) {
      const now = clock.now().getTime();
      const [nA, nB] = loadAt(step % 360);
      const results = await Promise.all([
        takeMany(a, 'device_business_send', key, nA, step % 2 === 0),
        takeMany(b, 'device_business_send', key, nB, step % 2 === 0),
      ]);
      for (const { allowed } of results) for (let i = 0; i < allowed; i++) grants.push(now);
      clock.advance(25);
    }
    // Each cycle's overload gets at least the full bucket it starts with.
    expect(grants.length).toBeGreaterThan(2 * spec.size);
    // The worst window: grants in it minus what the bucket may give out in it.
    let worst = -Infinity;
    for (let i = 0; i < grants.length; i++) {
      for (let j = i; j < grants.length; j++) {
        worst = Math.max(worst, j - i + 1 - (spec.size + (grants[j] - grants[i]) / spec.permitMs));
      }
    }
    expect(worst).toBeLessThanOrEqual(max);
  });
});
