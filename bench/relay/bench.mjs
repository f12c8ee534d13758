// End-to-end relay benchmark (a harness, not a test). Runs the relay with the README's run command (four
// services as processes, two crypto), D devices on the device SDK and B businesses with signed webhooks,
// then for a sustained window sends at a target rate both ways:
//   inbound  = device send (frame encrypted BEFORE the window) -> webhook 2xx at the business
//   outbound = Cloud API accept -> message decrypted on the device
// and reports throughput, latency p50/p95/p99, loss and duplicates, per-process CPU and memory, Postgres
// bytes per message, and the raw one-core libsignal rate measured in the same run.
//
//   npm run bench:relay -- [--devices 200] [--businesses 4] [--rate 1000] [--seconds 60]
//
// Needs the local NATS (TEST_NATS_URL) and Postgres (TEST_PG_ADMIN_URL) the tests use; creates and drops
// its own database and subject root. Writes docs/reports/relay-bench-<timestamp>.{json,md}.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ProcSampler, pidsNamed } from './proc.mjs';
import { loopbackRoundTrip } from '../shared/loopback.mjs';
import { rawRates, rawRatesTogether } from '../shared/raw-signal.mjs';
import { codeHook, startRelay } from './relay-process.mjs';
import { Businesses } from './businesses.mjs';
import { Devices } from './devices.mjs';
import { Histogram, writeReports } from './report.mjs';
import { backlog } from './backlog.mjs';
import { summarizeProfiles } from './profile.mjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const { createTestDatabase, deleteStreams, testSubjectRoot, TEST_NATS_URL } = require(
  join(root, 'dist/libs/testing/src/index.js'),
);
const pg = require('pg');

const { values: a } = parseArgs({
  options: {
    devices: { type: 'string', default: '200' },
    businesses: { type: 'string', default: '4' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '60' },
    'crypto-replicas': { type: 'string', default: '2' },
    'webhook-poll-ms': { type: 'string', default: '20' },
    drain: { type: 'string', default: '120' },
    profile: { type: 'boolean', default: false },
  },
});
const cfg = {
  devices: Number(a.devices),
  businesses: Number(a.businesses),
  rate: Number(a.rate),
  seconds: Number(a.seconds),
  cryptoReplicas: Number(a['crypto-replicas']),
  webhookPollMs: Number(a['webhook-poll-ms']),
  drain: Number(a.drain),
  profile: a.profile,
};
const log = (m) => process.stdout.write(`[bench] ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const HOOK_TOKEN = 'bench-hook-token-0123456789abcdef';

async function dbSize(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const r = await c.query('SELECT pg_database_size(current_database())::bigint AS n');
  await c.end();
  return Number(r.rows[0].n);
}

/**
 * The Postgres backends of this database by application_name (each service names its pool), so that
 * Postgres CPU can be told per service. Refreshed before each sample: pools may open connections.
 */
const backends = new Map();
async function refreshBackends(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const r = await c.query(
    'SELECT pid, application_name AS app FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
  );
  await c.end();
  backends.clear();
  for (const { pid, app } of r.rows) backends.set(app, [...(backends.get(app) ?? []), Number(pid)]);
}
const backendsOf = (app) => () => [...backends].filter(([a]) => a.startsWith(app)).flatMap(([, p]) => p);

/** Calls fn(i) for i in [0, n) at `rate` per second in 10 ms ticks, for `seconds`. */
async function paced(rate, seconds, fn) {
  const start = Date.now();
  let done = 0;
  const total = Math.round(rate * seconds);
  while (done < total) {
    const due = Math.min(total, Math.floor(((Date.now() - start) / 1000) * rate));
    while (done < due) fn(done++);
    await sleep(10);
  }
}

async function main() {
  log(`config ${JSON.stringify(cfg)}`);
  // Measured first, on the idle machine (afterwards the relay may still be working off a backlog).
  log('measuring raw libsignal on one core');
  await rawRates(50, 10); // untimed: a cold first run (JIT) is up to 3x slower than the ones after it
  const raw = await rawRates(100, 30);
  log('measuring raw libsignal on all cores at once');
  const rawAll = await rawRatesTogether(availableParallelism(), 100, 30);
  log('measuring a loopback round trip between two processes');
  const loopback = await loopbackRoundTrip();
  const db = await createTestDatabase('bench');
  const subjectRoot = testSubjectRoot('bench');
  const hook = await codeHook(HOOK_TOKEN);
  // --profile: every service process writes a V8 CPU profile when it exits (main and worker threads).
  const profileDir = cfg.profile ? mkdtempSync(join(tmpdir(), 'relay-profile-')) : null;
  const relay = await startRelay({
    root,
    env: {
      ...(profileDir
        ? {
            NODE_OPTIONS: [process.env.NODE_OPTIONS, `--cpu-prof --cpu-prof-dir=${profileDir}`]
              .filter(Boolean)
              .join(' '),
          }
        : {}),
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      NATS_URL: TEST_NATS_URL,
      DATABASE_URL: db.url,
      NATS_SUBJECT_ROOT: subjectRoot,
      DATABASE_POOL_SIZE: '10',
      RELAY_CRYPTO_REPLICAS: String(cfg.cryptoReplicas),
      VERIFICATION_SENDER: 'http',
      VERIFICATION_HOOK_URL: hook.url,
      VERIFICATION_HOOK_TOKEN: HOOK_TOKEN,
      WEBHOOK_ALLOW_HTTP: 'true',
      WEBHOOK_POLL_MS: String(cfg.webhookPollMs),
      RATE_LIMIT_DEVICE_SEND: '100000:1',
      RATE_LIMIT_DEVICE_BUSINESS_SEND: '100000:1',
      RATE_LIMIT_IP: '100000:1',
      RATE_LIMIT_VERIFICATION: '100000:1',
      RATE_LIMIT_CONNECTION_FRAMES: '100000:1',
      DEFAULT_THROUGHPUT_MPS: '100000',
      DEFAULT_PAIR_BURST: '10000',
      DEFAULT_PAIR_REFILL_MS: '1',
    },
  });
  const cleanup = async () => {
    await relay.stop().catch(() => undefined);
    await hook.close();
    await deleteStreams(subjectRoot).catch(() => undefined);
    await db.drop().catch(() => undefined);
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  process.once('uncaughtException', (err) => {
    console.error(err);
    void cleanup().then(() => process.exit(1));
  });
  try {
    const biz = new Businesses(relay, cfg.businesses);
    await biz.setUp();
    log(`${cfg.businesses} businesses set up; registering ${cfg.devices} devices`);
    const devs = new Devices(relay.url(0), cfg.devices, hook);
    await devs.register();
    await devs.openSessions(biz); // each device writes once: sessions exist, 24-hour windows open
    const perDevice = Math.ceil((cfg.rate * cfg.seconds) / cfg.devices);
    log(`encrypting ${perDevice * cfg.devices} inbound messages before the window`);
    await devs.preEncrypt(biz, perDevice);

    const inLat = new Histogram();
    const outLat = new Histogram();
    biz.onMessage = (body, at) => devs.inboundArrived(body, at, inLat);
    devs.onOutbound = (body, at) => biz.outboundArrived(body, at, outLat);
    const size0 = await dbSize(db.url);
    const sampler = new ProcSampler({
      gateway: () => relay.pids('gateway'),
      'business-forwarding': () => relay.pids('business-forwarding'),
      'crypto (all replicas)': () => relay.pids('crypto'),
      storage: () => relay.pids('storage'),
      'nats-server (shared)': () => pidsNamed('nats-server'),
      'postgres (all backends, shared)': () => pidsNamed('postgres'),
      '  of which gateway queries': backendsOf('gateway'),
      '  of which business-forwarding queries': backendsOf('business-forwarding'),
      '  of which crypto queries': backendsOf('crypto'),
      '  of which storage queries': backendsOf('storage'),
      'bench (load generator)': () => [process.pid],
    });
    log(`window: ${cfg.seconds} s at ${cfg.rate}/s each way`);
    // The same groups over window + drain: the CPU each process spent per delivered message.
    const whole = new ProcSampler(sampler.groups);
    await refreshBackends(db.url);
    sampler.start();
    whole.start();
    const t0 = Date.now();
    await Promise.all([
      paced(cfg.rate, cfg.seconds, (i) => devs.sendNext(i)),
      paced(cfg.rate, cfg.seconds, (i) => biz.sendTo(devs.waIdOf(i), devs.businessOf(i), i)),
    ]);
    const windowSecs = (Date.now() - t0) / 1000;
    await refreshBackends(db.url);
    const usage = sampler.stop();
    const backlogAtWindowEnd = await backlog(TEST_NATS_URL, subjectRoot, biz).catch((e) => ({
      error: e.message,
    }));
    log(`window over; draining (until all arrived, nothing arrived for 20 s, or ${cfg.drain} s passed)`);
    const pending = () => devs.pendingIn() + biz.pendingOut() + biz.unanswered();
    const arrivals = () => devs.arrived.size + biz.arrived.size;
    const drainEnd = Date.now() + cfg.drain * 1000;
    let last = arrivals();
    let lastProgress = Date.now();
    while (pending() > 0 && Date.now() - lastProgress < 20_000 && Date.now() < drainEnd) {
      await sleep(500);
      if (arrivals() > last) [last, lastProgress] = [arrivals(), Date.now()];
    }
    const drainSeconds = (Date.now() - t0) / 1000 - windowSecs;
    await refreshBackends(db.url);
    const wholeUsage = whole.stop();
    const size1 = await dbSize(db.url);
    // Sustained rate: delivered messages over the time from the window's start to the last arrival.
    const span = (last) => Math.max(windowSecs, (last - t0) / 1000);
    const inbound = devs.summary(inLat, span(devs.lastArrival));
    const outbound = biz.summary(outLat, span(biz.lastArrival));
    const delivered = inbound.delivered + outbound.delivered;
    const result = {
      config: cfg,
      windowSeconds: windowSecs,
      drainSeconds,
      inbound,
      outbound,
      usage,
      cpuMsPerMessage: Object.fromEntries(
        Object.entries(wholeUsage.rows).map(([name, u]) => [
          name,
          delivered ? (1000 * u.cpuSeconds) / delivered : null,
        ]),
      ),
      // Round trips: read and write system calls per delivered message, by process (window + drain).
      syscallsPerMessage: Object.fromEntries(
        Object.entries(wholeUsage.rows).map(([name, u]) => [
          name,
          delivered ? { reads: u.readCalls / delivered, writes: u.writeCalls / delivered } : null,
        ]),
      ),
      backlogAtWindowEnd,
      postgres: { bytesGrowth: size1 - size0, bytesPerMessage: delivered ? (size1 - size0) / delivered : 0 },
      rawSignalOneCore: raw,
      rawSignalAllCores: rawAll,
      loopback,
      fractionOfRaw: {
        inbound: inbound.throughput / raw.dec,
        outbound: outbound.throughput / raw.enc,
      },
    };
    if (profileDir) {
      const pids = Object.fromEntries(
        ['gateway', 'business-forwarding', 'crypto', 'storage'].map((s) => [s, relay.pids(s)]),
      );
      await relay.stop(); // profiles are written as the processes exit
      result.profiles = summarizeProfiles(profileDir, pids);
      rmSync(profileDir, { recursive: true, force: true });
    }
    writeReports(root, result, log);
  } finally {
    await cleanup();
  }
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
