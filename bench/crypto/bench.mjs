// Crypto throughput benchmark (not a test): decrypts/s and encrypts/s of the crypto service with one and
// two processes, database round trips and NATS included, next to the raw single-core libsignal rate of
// the same workload measured in the same run.
//
//   npm run build && node_modules/.bin/node bench/crypto/bench.mjs [devices=400] [messagesPerDevice=10]
//     [--repeat N] [--profile]
//
// --repeat N runs every measurement N times and reports medians; --profile writes V8 CPU profiles of the
// timed crypto processes and prints where they spend their time. Each drain's rate is set against the raw
// rate sampled right before and right after that drain.
//
// Needs the local Postgres (TEST_PG_ADMIN_URL) and NATS (TEST_NATS_URL) the tests use. Workload: D
// established sessions (first PreKey message and a business reply already exchanged); each device then
// sends M messages (decrypt phase) and the business sends M messages to each device (encrypt phase), so the
// first message of each burst carries a ratchet step, the rest continue the chain. Messages are queued in
// JetStream while crypto is stopped; the rate is measured from the first to the last event it emits, by
// their JetStream timestamps. While crypto drains, this script only polls the output stream's last
// sequence; it reads and checks every event afterwards, so it takes no CPU from crypto during the drain.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const dist = (p) => require(join(root, 'dist', p));
const { DeviceClient } = dist('apps/crypto/src/testing/device-client.js');
const { cryptoDataSource } = dist('apps/crypto/src/data-source.js');
const { NatsBus, SubjectSequencer, ensureStreams, migrate } = dist('libs/platform/src/index.js');
const { createTestDatabase, deleteStreams, freePort, serviceEnv, testSubjectRoot, waitFor, TEST_NATS_URL } =
  dist('libs/testing/src/index.js');
const { streamName } = dist('libs/protocol/src/index.js');
const { connect } = require('nats');
const pino = require('pino');
const { Registry } = require('prom-client');
import { rawRates, rawRatesTogether } from '../shared/raw-signal.mjs';

const argv = process.argv.slice(2);
const repeatAt = argv.indexOf('--repeat');
// --repeat N: every measurement N times (one and two processes alternating); medians are reported.
const REPEAT = repeatAt >= 0 ? Math.max(1, Number(argv[repeatAt + 1])) : 1;
const args = argv.filter(
  (a, i) => a !== '--profile' && a !== '--repeat' && (repeatAt < 0 || i !== repeatAt + 1),
);
const D = Number(args[0] ?? 400);
const M = Number(args[1] ?? 10);
// The raw rate is sampled right before and right after each drain (this many ops): on a shared or
// virtual machine the core's speed drifts within seconds, so a ratio needs a raw rate from the same moments.
const rawAround = () => rawRates(100, 20, BODY.length);
// How often the drain's end is polled (one stream-info request each; the figure comes from timestamps).
const DRAIN_POLL_MS = 50;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// --profile: the timed crypto processes write V8 CPU profiles (main and worker threads), summarised at the end.
const profileDir = process.argv.includes('--profile') ? mkdtempSync(join(tmpdir(), 'crypto-profile-')) : null;
const profiledPids = [];
const PN = '15559990';
const BODY = 'x'.repeat(140);
const plaintext = (i) =>
  JSON.stringify({ v: 1, sent_at: Date.now(), content: { type: 'text', text: { body: `${BODY} ${i}` } } });
const rid = () => randomBytes(12).toString('base64url');
const log = (...a) => console.log(...a);

// ---------------------------------------------------------------- CPU accounting (Linux /proc)
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { summarizeProfiles } from '../relay/profile.mjs';
import { cpuSeconds as cpuOf, ioCalls, machineCpu, pidsNamed } from '../relay/proc.mjs';
function threadsOf(pids) {
  const out = {};
  for (const pid of pids) {
    let tids = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      let comm = '?';
      try {
        comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      out[`crypto:${comm}`] = (out[`crypto:${comm}`] ?? 0) + cpuOf(`${pid}/task/${tid}`);
    }
  }
  return out;
}
/** CPU seconds used so far by: the crypto processes, Postgres (all backends), nats-server, this script. */
function cpuSnapshot(cryptoPids) {
  const sum = (pids) => pids.reduce((a, p) => a + cpuOf(p), 0);
  return {
    ...threadsOf(cryptoPids),
    crypto: sum(cryptoPids),
    nats: sum(pidsNamed('nats-server')),
    bench: cpuOf(process.pid),
  };
}
/** Write system calls of the crypto processes so far: their socket writes, i.e. round trips to NATS and Postgres. */
const writesOf = (pids) => pids.reduce((a, p) => a + ioCalls(p).writes, 0);
/** Machine-wide busy fraction between two /proc/stat readings (other work on the machine included). */
const busy = (a, b) => (b.busy - a.busy) / Math.max(1, b.total - a.total);
const cpuDelta = (a, b, n) =>
  Object.fromEntries(Object.keys(a).map((k) => [k, Math.round(((b[k] - a[k]) * 1e6) / n)]));

// ---------------------------------------------------------------- the service
class World {
  async setup() {
    this.db = await createTestDatabase('cryptobench');
    this.root = testSubjectRoot('cbench');
    this.masterKey = `mk1:${randomBytes(32).toString('base64')}`;
    const ds = cryptoDataSource(this.db.url, 2);
    await migrate(ds);
    await ds.destroy();
    this.nc = await connect({ servers: TEST_NATS_URL, name: 'bench' });
    const jsm = await this.nc.jetstreamManager();
    this.jsm = jsm;
    this.js = this.nc.jetstream();
    await ensureStreams(jsm, { root: this.root, retentionDays: 1 });
    this.bus = new NatsBus(
      this.nc,
      this.nc.jetstream(),
      jsm,
      this.root,
      'gateway',
      pino({ level: 'silent' }),
      new Registry(),
    );
    this.children = new Set();
  }

  async start(n, extra = {}, profile = false) {
    const procs = [];
    for (let i = 0; i < n; i++) {
      const port = await freePort();
      const env = serviceEnv(this.db, this.root, {
        MASTER_KEY: this.masterKey,
        HTTP_PORT: String(port),
        LOG_LEVEL: 'warn',
        PREKEY_POOL_SIZE: String(D + 50),
        DATABASE_POOL_SIZE: '9',
        ...extra,
      });
      const prof = [
        ...(process.env.XARGS ? process.env.XARGS.split(' ') : []),
        ...(profile && profileDir ? [`--cpu-prof`, `--cpu-prof-dir=${profileDir}`] : []),
      ];
      const child = spawn(process.execPath, [...prof, join(root, 'dist/apps/crypto/src/main.js')], {
        env: { PATH: process.env.PATH, ...env },
        stdio: ['ignore', process.env.CRYPTO_BENCH_LOGS ? 'inherit' : 'ignore', 'inherit'],
      });
      this.children.add(child);
      if (prof.length) profiledPids.push(child.pid);
      child.on('exit', () => this.children.delete(child));
      procs.push({ child, port });
    }
    for (const p of procs)
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${p.port}/ready`).catch(() => null))?.status === 200,
        30_000,
      );
    return procs;
  }

  /** Sums of crypto's own counters over the processes (scraped from /metrics before they stop). */
  async counters(procs) {
    const want = {
      decrypted: /^relay_crypto_envelopes_total\{outcome="decrypted"[^}]*\} (\S+)/,
      duplicates: /^relay_crypto_envelopes_total\{outcome="duplicate"[^}]*\} (\S+)/,
      readBack: /^relay_crypto_envelopes_total\{outcome="read_back"[^}]*\} (\S+)/,
      readBackSessions: /^relay_crypto_read_backs_total(?:\{[^}]*\})? (\S+)/,
      republished: /^relay_crypto_republished_total\{[^}]*\} (\S+)/,
      lockWaitSeconds: /^relay_crypto_session_lock_seconds_sum\{[^}]*\} (\S+)/,
      // One session-lock round per batch that reached the database: the number of batches.
      batches: /^relay_crypto_session_lock_seconds_count\{[^}]*\} (\S+)/,
    };
    const out = Object.fromEntries(Object.keys(want).map((k) => [k, 0]));
    for (const p of procs) {
      const text = await (await fetch(`http://127.0.0.1:${p.port}/metrics`)).text();
      for (const line of text.split('\n'))
        for (const [k, re] of Object.entries(want)) {
          const m = re.exec(line);
          if (m) out[k] += Number(m[1]);
        }
    }
    out.lockWaitSeconds = Math.round(out.lockWaitSeconds * 10) / 10;
    return out;
  }

  async stop(procs) {
    await Promise.all(
      procs.map((p) => new Promise((r) => (p.child.once('exit', r), p.child.kill('SIGTERM')))),
    );
  }

  /** Counts events on a subject (core subscription) and times first -> last. */
  /**
   * Counts distinct events (by msgId) on a subject (core subscription) and times first -> last. A core
   * subscriber also sees re-publishes that JetStream drops as duplicates (crypto re-publishes a
   * session's ciphertexts not yet marked published); they are counted apart, not as throughput.
   */
  watch(subject, expected, onEvent = () => {}) {
    const ids = new Set();
    let dup = 0;
    let first = 0;
    const sub = this.nc.subscribe(subject);
    const done = (async () => {
      for await (const m of sub) {
        if (ids.size === 0) first = performance.now();
        const id = m.headers?.get('Nats-Msg-Id') ?? String(ids.size);
        if (ids.has(id)) {
          dup++;
          continue;
        }
        ids.add(id);
        onEvent(m);
        if (ids.size >= expected) break;
      }
      return { n: ids.size, dup, seconds: (performance.now() - first) / 1000 };
    })();
    return done;
  }

  /** The stream's last sequence now: events of the next phase are the ones after it. */
  async lastSeq(key) {
    return (await this.jsm.streams.info(streamName(this.root, key))).state.last_seq;
  }

  /** Waits until `expected` events follow sequence `from` in the stream, polling its state only. */
  async drained(key, from, expected) {
    const name = streamName(this.root, key);
    while ((await this.jsm.streams.info(name)).state.last_seq - from < expected) await sleep(DRAIN_POLL_MS);
  }

  /**
   * Reads the `expected` events after sequence `from` back: throughput is first -> last event by their
   * stored timestamps, and every event must have its own Nats-Msg-Id (exactly once).
   */
  async events(key, from, expected, onEvent = () => {}) {
    const name = streamName(this.root, key);
    const ids = new Set();
    let first = 0;
    let last = 0;
    const consumer = await this.js.consumers.get(name, { opt_start_seq: from + 1 });
    const messages = await consumer.consume();
    for await (const m of messages) {
      const t = Number(m.info.timestampNanos) / 1e6; // ms; a double keeps well under 1 µs here
      if (!first) first = t;
      last = t;
      ids.add(m.headers?.get('Nats-Msg-Id') ?? `seq:${m.seq}`);
      onEvent(m);
      if (m.seq - from >= expected) break;
    }
    await messages.close();
    if (ids.size !== expected) throw new Error(`${name}: ${ids.size} distinct events, expected ${expected}`);
    return { n: ids.size, seconds: (last - first) / 1000 };
  }

  /** CPU seconds of each Postgres backend serving this benchmark's database (the server may be shared). */
  async backendCpu() {
    const { Client } = require('pg');
    const c = new Client({ connectionString: this.db.url });
    await c.connect();
    try {
      const r = await c.query(
        'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      );
      return new Map(r.rows.map((x) => [String(x.pid), cpuOf(x.pid)]));
    } finally {
      await c.end();
    }
  }

  /** Postgres CPU microseconds per message since `before` (backends opened meanwhile count fully). */
  async backendCpuSince(before, n) {
    const after = await this.backendCpu();
    let s = 0;
    for (const [pid, v] of after) s += v - (before.get(pid) ?? 0);
    return Math.round((s * 1e6) / n);
  }

  /** Average stored size of a session row's state and of an outbox row's payload (sealed), in bytes. */
  async rowSizes() {
    const { Client } = require('pg');
    const c = new Client({ connectionString: this.db.url });
    await c.connect();
    try {
      const s = await c.query('SELECT avg(octet_length(state))::int AS n FROM crypto.sessions');
      const o = await c.query('SELECT avg(octet_length(payload))::int AS n FROM crypto.outbox');
      return { session: s.rows[0].n, outbox: o.rows[0].n };
    } finally {
      await c.end();
    }
  }

  async teardown() {
    for (const c of this.children) c.kill('SIGKILL');
    await this.nc.close();
    await deleteStreams(this.root);
    await this.db.drop();
  }
}

async function measure(world, processes, workers, devices, label) {
  const extra = { CRYPTO_WORKERS: String(workers) };
  // Decrypt phase: queue D*M envelopes while crypto is down, then start it and time the drain.
  const envs = [];
  for (const d of devices)
    for (let j = 0; j < M; j++) {
      const ct = await d.encrypt(PN, plaintext(j));
      envs.push({
        envelope_id: rid(),
        phone_number_id: PN,
        from: { wa_id: d.waId, device_id: 1 },
        type: ct.type,
        ciphertext: ct.ciphertext,
        received_at: new Date().toISOString(),
      });
    }
  // As the gateway publishes them: each stamped with its session's previous envelope.
  const envelopes = new SubjectSequencer(world.bus, 'device.envelope');
  await Promise.all(
    envs.map((e) =>
      envelopes.publish({ phone_number_id: PN, wa_id: e.from.wa_id, device_id: 1 }, e, {
        msgId: e.envelope_id,
      }),
    ),
  );
  const inbound0 = await world.lastSeq('INBOUND');
  const decRaw0 = await rawAround();
  let procs = await world.start(processes, extra, true);
  let pg0 = await world.backendCpu();
  let c0 = cpuSnapshot(procs.map((p) => p.child.pid));
  let w0 = writesOf(procs.map((p) => p.child.pid));
  let m0 = machineCpu();
  await world.drained('INBOUND', inbound0, envs.length);
  const decWrites = (writesOf(procs.map((p) => p.child.pid)) - w0) / envs.length;
  const decBusy = busy(m0, machineCpu());
  const decCpu = cpuDelta(c0, cpuSnapshot(procs.map((p) => p.child.pid)), envs.length);
  decCpu.postgres = await world.backendCpuSince(pg0, envs.length);
  const dec = await world.events('INBOUND', inbound0, envs.length);
  const decCounters = await world.counters(procs);
  await world.stop(procs);
  const decRaw1 = await rawAround();
  // Encrypt phase: D*M outbound requests (one device each).
  const reqs = [];
  for (const d of devices)
    for (let j = 0; j < M; j++)
      reqs.push({
        wamid: `wamid.${rid()}`,
        phone_number_id: PN,
        to: d.waId,
        content: { type: 'text', text: { body: `${BODY} ${j}` } },
        accepted_at: new Date().toISOString(),
      });
  await Promise.all(
    reqs.map((r) => world.bus.publish('outbound.request', { phone_number_id: PN }, r, { msgId: r.wamid })),
  );
  const delivery0 = await world.lastSeq('DELIVERY');
  const encRaw0 = await rawAround();
  procs = await world.start(processes, extra, true);
  pg0 = await world.backendCpu();
  c0 = cpuSnapshot(procs.map((p) => p.child.pid));
  w0 = writesOf(procs.map((p) => p.child.pid));
  m0 = machineCpu();
  await world.drained('DELIVERY', delivery0, reqs.length);
  const encWrites = (writesOf(procs.map((p) => p.child.pid)) - w0) / reqs.length;
  const encBusy = busy(m0, machineCpu());
  const encCpu = cpuDelta(c0, cpuSnapshot(procs.map((p) => p.child.pid)), reqs.length);
  encCpu.postgres = await world.backendCpuSince(pg0, reqs.length);
  const deliveries = [];
  const enc = await world.events('DELIVERY', delivery0, reqs.length, (m) =>
    deliveries.push(JSON.parse(Buffer.from(m.data).toString())),
  );
  const encCounters = await world.counters(procs);
  await world.stop(procs);
  const encRaw1 = await rawAround();
  // Keep the device side in step (and check the ciphertexts really decrypt).
  const byWa = new Map(devices.map((d) => [d.waId, d]));
  for (const c of deliveries) await byWa.get(c.to.wa_id).decrypt(PN, c.type, c.ciphertext);
  return {
    label,
    processes,
    workers,
    dec: dec.n / dec.seconds,
    enc: enc.n / enc.seconds,
    rawDec: (decRaw0.dec + decRaw1.dec) / 2,
    rawEnc: (encRaw0.enc + encRaw1.enc) / 2,
    rawDecCpuUs: (decRaw0.decCpuUs + decRaw1.decCpuUs) / 2,
    rawEncCpuUs: (encRaw0.encCpuUs + encRaw1.encCpuUs) / 2,
    republished: decCounters.republished + encCounters.republished,
    decWrites,
    encWrites,
    decCounters,
    encCounters,
    decCpu,
    encCpu,
    decBusy,
    encBusy,
  };
}

let current;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    // Never leave crypto processes behind.
    for (const c of current?.children ?? []) c.kill('SIGKILL');
    process.exit(130);
  });
}

async function main() {
  log(
    `crypto benchmark: ${D} sessions x ${M} messages, ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}`,
  );
  const world = new World();
  current = world;
  await world.setup();
  try {
    // Provision and establish D sessions (first PreKey message + a reply each), not timed.
    const procs = await world.start(1);
    await world.bus.publish(
      'business.number_registered',
      { phone_number_id: PN },
      {
        phone_number_id: PN,
        waba_id: '1',
        display_phone_number: `+${PN}`,
        retention_days: 30,
        at: new Date().toISOString(),
      },
    );
    await waitFor(
      async () =>
        world.bus
          .request('crypto.business_bundle', {
            phone_number_id: PN,
            requester: { wa_id: '4917000000000', device_id: 1 },
          })
          .then(() => true),
      30_000,
    );
    const devices = [];
    for (let i = 0; i < D; i++) {
      const d = new DeviceClient(`49170${String(i).padStart(7, '0')}`, 1);
      await d.startSession(
        PN,
        await world.bus.request('crypto.business_bundle', {
          phone_number_id: PN,
          requester: { wa_id: d.waId, device_id: 1 },
        }),
      );
      devices.push(d);
    }
    let w = world.watch(`${world.root}.v1.inbound.message.${PN}`, D);
    for (const d of devices) {
      const ct = await d.encrypt(PN, plaintext(0));
      await world.bus.publish(
        'device.envelope',
        { phone_number_id: PN, wa_id: d.waId, device_id: 1 },
        {
          envelope_id: rid(),
          phone_number_id: PN,
          from: { wa_id: d.waId, device_id: 1 },
          type: ct.type,
          ciphertext: ct.ciphertext,
          received_at: new Date().toISOString(),
        },
      );
    }
    await w;
    const replies = [];
    const got = world.watch(`${world.root}.v1.delivery.ciphertext.*.*`, D, (m) =>
      replies.push(JSON.parse(Buffer.from(m.data).toString())),
    );
    for (const d of devices)
      await world.bus.publish(
        'outbound.request',
        { phone_number_id: PN },
        {
          wamid: `wamid.${rid()}`,
          phone_number_id: PN,
          to: d.waId,
          content: { type: 'text', text: { body: 'hi' } },
          accepted_at: new Date().toISOString(),
        },
      );
    await got;
    const byWa = new Map(devices.map((d) => [d.waId, d]));
    for (const c of replies) await byWa.get(c.to.wa_id).decrypt(PN, c.type, c.ciphertext);
    await world.stop(procs);
    log(`setup done: ${D} sessions established`);

    await rawRates(50, 10, BODY.length); // untimed: a cold first run (JIT) is up to 3x slower
    const load0 = loadavg()[0];
    const cores = availableParallelism();
    // The machine's whole libsignal capacity (every core at once), before and after the drains.
    const together = [await rawRatesTogether(cores, 100, 20, BODY.length)];
    const ones = [];
    const twos = [];
    const show = (r) =>
      log(
        `  run: ${r.label}: ${Math.round(r.dec)} decrypts/s (raw ${Math.round(r.rawDec)}), ${Math.round(r.enc)} encrypts/s (raw ${Math.round(r.rawEnc)})`,
      );
    for (let i = 0; i < REPEAT; i++) {
      ones.push(await measure(world, 1, cores, devices, 'one process'));
      show(ones[i]);
      twos.push(await measure(world, 2, Math.max(1, Math.floor(cores / 2)), devices, 'two processes'));
      show(twos[i]);
    }
    const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)];
    const f = (x) => Math.round(x).toLocaleString('en-US').padStart(8);
    const pct = (x) => `${Math.round(100 * x)}%`;
    log('');
    log(
      `Each drain is timed next to the raw one-thread libsignal rate sampled right before and after it; ${REPEAT} run(s), medians (range):`,
    );
    log('                                     decrypts/s   of raw              encrypts/s   of raw');
    for (const runs of [ones, twos]) {
      const r0 = runs[0];
      const per = r0.processes;
      const decPct = runs.map((r) => r.dec / per / r.rawDec);
      const encPct = runs.map((r) => r.enc / per / r.rawEnc);
      const range = (xs) => (xs.length > 1 ? `(${pct(Math.min(...xs))}-${pct(Math.max(...xs))})` : '');
      log(
        `${r0.label} (${r0.workers} worker${r0.workers > 1 ? 's' : ''} each), total ${f(median(runs.map((r) => r.dec)))}                    ${f(median(runs.map((r) => r.enc)))}`,
      );
      log(
        `   per process                   ${f(median(runs.map((r) => r.dec / per)))}   ${pct(median(decPct)).padStart(4)} ${range(decPct).padEnd(12)}  ${f(median(runs.map((r) => r.enc / per)))}   ${pct(median(encPct)).padStart(4)} ${range(encPct)}`,
      );
      log(
        `   raw libsignal at those moments ${f(median(runs.map((r) => r.rawDec)))}                    ${f(median(runs.map((r) => r.rawEnc)))}`,
      );
    }
    together.push(await rawRatesTogether(cores, 100, 20, BODY.length));
    const allDec = median(together.map((t) => t.dec));
    const allEnc = median(together.map((t) => t.enc));
    const oneDec = median([...ones, ...twos].map((r) => r.rawDec));
    const oneEnc = median([...ones, ...twos].map((r) => r.rawEnc));
    log(
      `raw libsignal on all ${cores} cores at once (threads started together, no database, no NATS): ${f(allDec).trim()} decrypts/s, ${f(allEnc).trim()} encrypts/s in total, ` +
        `${(allDec / oneDec).toFixed(2)}x and ${(allEnc / oneEnc).toFixed(2)}x the one-thread rate above: the most any number of crypto processes could reach on this machine if they did nothing but libsignal`,
    );
    const one = ones[ones.length - 1];
    const two = twos[twos.length - 1];
    const raw = {
      decCpuUs: median([...ones, ...twos].map((r) => r.rawDecCpuUs)),
      encCpuUs: median([...ones, ...twos].map((r) => r.rawEncCpuUs)),
    };
    log('');
    log(
      `load average: ${load0.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end (${availableParallelism()} cores)`,
    );
    log(
      `CPU microseconds per message (during the drain, last run); raw libsignal: decrypt ${Math.round(raw.decCpuUs)}, encrypt ${Math.round(raw.encCpuUs)}:`,
    );
    for (const r of [one, two]) {
      log(`  ${r.label}, decrypt: ${JSON.stringify(r.decCpu)}`);
      log(`  ${r.label}, encrypt: ${JSON.stringify(r.encCpu)}`);
      log(
        `  ${r.label}, machine busy while draining: decrypt ${Math.round(r.decBusy * 100)}%, encrypt ${Math.round(r.encBusy * 100)}%`,
      );
      log(`  ${r.label}, events re-published (dropped by JetStream as duplicates): ${r.republished}`);
      log(
        `  ${r.label}, write system calls of crypto per message (round trips to NATS and Postgres): decrypt ${r.decWrites.toFixed(2)}, encrypt ${r.encWrites.toFixed(2)}`,
      );
      log(`  ${r.label}, crypto counters, decrypt phase: ${JSON.stringify(r.decCounters)}`);
      log(`  ${r.label}, crypto counters, encrypt phase: ${JSON.stringify(r.encCounters)}`);
    }
    const sizes = await world.rowSizes();
    log(`stored per row (sealed): session state ${sizes.session} bytes, outbox event ${sizes.outbox} bytes`);
    log('');
    log(
      '("crypto:*": threads of the crypto processes; "postgres": backends of this database; "nats": the whole',
    );
    log('nats-server process, which other users of the machine share; "bench": this script.)');
    log('Service figures include NATS consume + publish with acks, Postgres transactions (row locks, sealed');
    log(
      'session rows, outbox), AES-GCM at rest; everything shares the same cores (Postgres and NATS included).',
    );
    if (profileDir) {
      log('');
      log(`CPU profile of the timed crypto processes (${profileDir}), self time:`);
      const p = summarizeProfiles(profileDir, { crypto: profiledPids }, 25).crypto;
      for (const x of p?.byPackage ?? [])
        log(`  ${String(x.ms).padStart(6)} ms ${x.percent.toFixed(1).padStart(5)}%  ${x.name}`);
      log('  by function:');
      for (const x of p?.byFunction ?? [])
        log(`  ${String(x.ms).padStart(6)} ms ${x.percent.toFixed(1).padStart(5)}%  ${x.name}`);
    }
  } finally {
    await world.teardown();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
