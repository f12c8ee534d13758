// Benchmark (not a test): the gateway's shared rate limiter alone, as the inbound path uses it (a
// `device_send` then a `device_business_send` take per device message). Prints the NATS requests it
// makes per message and the messages per second it lets through. Needs `npm run build` and NATS at
// $BENCH_NATS_URL (default: the local test server).
//
//   node_modules/.bin/node bench/gateway/rate-limiter.mjs [--devices 20] [--messages 50]
//     [--limit 10000:1] [--lease 0.1] [--replicas 1]
//
// What is real: RateLimiter from dist/ on a real NATS JetStream KV bucket (its own subject root).
// --replicas N runs N limiters, each on its own NATS connection, each device's messages going through
// one of them (as a device's connection lives on one gateway); --lease 0 is the exact mode (a
// compare-and-set per take). With limits that never refuse (the default) every message is let through.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const { connect } = require('nats');
const pino = require('pino');
const { Registry } = require('prom-client');
const { NatsBus, systemClock } = require(join(root, 'dist/libs/platform/src/index.js'));
const { RateLimiter } = require(join(root, 'dist/apps/gateway/src/ratelimit/rate-limiter.js'));

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '20' },
    messages: { type: 'string', default: '50' },
    limit: { type: 'string', default: '10000:1' },
    lease: { type: 'string', default: '0.1' },
    replicas: { type: 'string', default: '1' },
  },
});
const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
const ROOT = `bench${randomBytes(3).toString('hex')}`;
const [size, permitMs] = args.limit.split(':').map(Number);
const spec = { size, permitMs };
const config = {
  RATE_LIMIT_IP: spec,
  RATE_LIMIT_DEVICE_SEND: spec,
  RATE_LIMIT_DEVICE_BUSINESS_SEND: spec,
  RATE_LIMIT_DEVICE_BUNDLE: spec,
  RATE_LIMIT_VERIFICATION: spec,
  RATE_LIMIT_LEASE_FRACTION: Number(args.lease),
};
const log = pino({ level: 'silent' });

// Every NATS request of the limiters' connections, by subject kind (KV reads and writes are requests;
// a plain publish is not used by the limiter, and request() publishes through publish(), so only
// requests are counted).
const counts = new Map();
const count = (subject) => {
  const kind = subject.startsWith('$JS.API.DIRECT.GET')
    ? 'direct get'
    : subject.startsWith('$KV')
      ? 'kv write'
      : subject;
  counts.set(kind, (counts.get(kind) ?? 0) + 1);
};

const limiters = [];
const conns = [];
for (let i = 0; i < Number(args.replicas); i++) {
  const nc = await connect({ servers: NATS_URL });
  conns.push(nc);
  const bus = new NatsBus(
    nc,
    nc.jetstream(),
    await nc.jetstreamManager(),
    ROOT,
    'gateway',
    log,
    new Registry(),
  );
  const limiter = new RateLimiter(bus, config, systemClock, log);
  await limiter.onModuleInit();
  limiters.push(limiter);
}
const proto = Object.getPrototypeOf(conns[0]);
const { request } = proto;
proto.request = function (subject, ...rest) {
  count(subject);
  return request.call(this, subject, ...rest);
};

const D = Number(args.devices);
const M = Number(args.messages);
let allowed = 0;
let refused = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: D }, async (_, d) => {
    const limiter = limiters[d % limiters.length];
    const who = `4915${String(d).padStart(8, '0')}.1`;
    for (let m = 0; m < M; m++) {
      const a = await limiter.take('device_send', who);
      const b = a === undefined ? await limiter.take('device_business_send', `${who}.1500000001`) : a;
      if (b === undefined) allowed++;
      else refused++;
    }
  }),
);
const ms = performance.now() - t0;
const total = [...counts.values()].reduce((a, b) => a + b, 0);
const messages = D * M;
console.log(
  JSON.stringify({
    limit: args.limit,
    lease_fraction: Number(args.lease),
    replicas: limiters.length,
    messages,
    allowed,
    refused,
    nats_requests: Object.fromEntries(counts),
    nats_requests_per_message: +(total / messages).toFixed(3),
    ms: Math.round(ms),
    messages_per_s: Math.round(messages / (ms / 1000)),
  }),
);

const jsm = await conns[0].jetstreamManager();
await jsm.streams.delete(`KV_${RateLimiter.bucketName(ROOT)}`).catch(() => undefined);
for (const nc of conns) await nc.close();
