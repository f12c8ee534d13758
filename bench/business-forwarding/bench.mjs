// Benchmark of business-forwarding on the real stack (Postgres, NATS, HTTP), printing figures.
// Run after a build (npm run build):  node_modules/.bin/node bench/business-forwarding/bench.mjs
// Env: BENCH_SENDS (5000), BENCH_CONCURRENCY (64), BENCH_INBOUND (3000), BENCH_STATUSES (3000).
// It starts business-forwarding from dist/ as its own process and stands in for crypto/gateway/storage
// by publishing their events on NATS; a local HTTP server is the webhook receiver. Besides rates it
// prints, per message, the Postgres statements the service sent (count-queries.cjs is preloaded into
// it) and the CPU time of the service and of its Postgres backends: on shared cores those hold still
// when wall-clock rates do not.
import { spawn } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const { connect, JSONCodec } = require('nats');
const { Client } = require('pg');
const { businessForwardingDataSource } = require(
  join(root, 'dist/apps/business-forwarding/src/data-source.js'),
);
const { migrate } = require(join(root, 'dist/libs/platform/src/database/data-source.js'));

const SENDS = Number(process.env.BENCH_SENDS ?? 5000);
const CONC = Number(process.env.BENCH_CONCURRENCY ?? 64);
const INBOUND = Number(process.env.BENCH_INBOUND ?? 3000);
const STATUSES = Number(process.env.BENCH_STATUSES ?? 3000);
const PG = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NATS = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
const say = (s) => process.stdout.write(`${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const jc = JSONCodec();

const dbName = `relay_bfbench_${randomBytes(4).toString('hex')}`;
const subjectRoot = `bfbench${randomBytes(3).toString('hex')}`;
const operator = randomBytes(24).toString('hex');
const port = 18000 + Math.floor(Math.random() * 2000);
const base = `http://127.0.0.1:${port}`;
let proc;
let nc;
const countsFile = join(tmpdir(), `${dbName}-queries.json`);

/** The service's Postgres statements so far, by shape (count-queries.cjs writes them on SIGUSR2). */
async function queryCounts() {
  rmSync(countsFile, { force: true });
  proc.kill('SIGUSR2');
  for (let i = 0; i < 100; i++) {
    try {
      return JSON.parse(readFileSync(countsFile, 'utf8'));
    } catch {
      await sleep(20);
    }
  }
  throw new Error('the service did not write its query counts');
}

/** CPU seconds used so far by the service and by the Postgres backends serving its database. */
async function cpuSeconds(db) {
  const ticks = (pid) => {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return Number(f[11]) + Number(f[12]);
    } catch {
      return 0;
    }
  };
  const { rows } = await db.query('SELECT pid FROM pg_stat_activity WHERE datname = current_database()');
  const pg = rows.reduce((n, r) => n + (r.pid === db.processID ? 0 : ticks(r.pid)), 0);
  return { service: ticks(proc.pid) / 100, pg: pg / 100 };
}

function cpuPerMessage(before, after, messages) {
  const ms = (k) => (((after[k] - before[k]) * 1000) / messages).toFixed(3);
  say(`  CPU per message: service ${ms('service')} ms, its Postgres backends ${ms('pg')} ms`);
}

/** Statements per message between two snapshots, the most frequent shapes first. */
function perMessage(before, after, messages, label) {
  const diff = Object.entries(after)
    .map(([k, v]) => [k, v - (before[k] ?? 0)])
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1]);
  const total = diff.reduce((n, [, v]) => n + v, 0);
  say(
    `  ${label}: ${total} Postgres statements for ${messages} = ${(total / messages).toFixed(2)} per message`,
  );
  for (const [k, v] of diff.slice(0, 8)) say(`    ${String(v).padStart(6)}  ${k}`);
}

async function admin(method, path, body) {
  const r = await fetch(`${base}/admin/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${operator}`, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  return r.json();
}

function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function main() {
  const pgAdmin = new Client({ connectionString: PG });
  await pgAdmin.connect();
  await pgAdmin.query(`CREATE DATABASE "${dbName}"`);
  const dbUrl = Object.assign(new URL(PG), { pathname: `/${dbName}` }).toString();
  const ds = businessForwardingDataSource(dbUrl, 2);
  await migrate(ds);
  await ds.destroy();

  proc = spawn(
    process.execPath,
    [
      '--require',
      join(root, 'bench/business-forwarding/count-queries.cjs'),
      join(root, 'dist/apps/business-forwarding/src/main.js'),
    ],
    {
      env: {
        ...process.env,
        NODE_ENV: 'production',
        LOG_LEVEL: 'warn',
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: String(port),
        NATS_URL: NATS,
        NATS_SUBJECT_ROOT: subjectRoot,
        DATABASE_URL: dbUrl,
        DATABASE_POOL_SIZE: '20',
        OPERATOR_TOKEN: operator,
        MASTER_KEY: `bench:${randomBytes(32).toString('base64')}`,
        WEBHOOK_ALLOW_HTTP: 'true',
        WEBHOOK_POLL_MS: '50',
        BENCH_QUERY_COUNTS: countsFile,
      },
      stdio: ['ignore', process.env.BENCH_SERVICE_LOG ? 'inherit' : 'ignore', 'inherit'],
    },
  );
  for (let i = 0; i < 200; i++) {
    if ((await fetch(`${base}/ready`).catch(() => undefined))?.ok) break;
    await sleep(100);
  }
  nc = await connect({ servers: NATS });
  const js = nc.jetstream();

  const waba = '7000001';
  const pnid = '7000002';
  const biz = await admin('POST', '/businesses', { waba_id: waba, name: 'Bench' });
  await admin('POST', `/businesses/${waba}/phone_numbers`, {
    phone_number_id: pnid,
    display_phone_number: '+1 555 7000',
  });
  await admin('PATCH', `/phone_numbers/${pnid}`, { throughput_mps: 100000, pair_burst: 10000 });
  const { access_token: token } = await admin('POST', `/businesses/${waba}/tokens`, {});
  await fetch(`${base}/v23.0/${pnid}/register`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ messaging_product: 'whatsapp', pin: '123456' }),
  });

  // Receiver: counts accepted webhooks, verifies signatures, keeps message order.
  const got = { messages: [], statuses: 0, badSig: 0 };
  const receiver = http.createServer((req, res) => {
    if (req.method === 'GET') return res.end(new URL(req.url, 'http://x').searchParams.get('hub.challenge'));
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const sig = `sha256=${createHmac('sha256', biz.app_secret).update(raw).digest('hex')}`;
      if (req.headers['x-hub-signature-256'] !== sig) got.badSig++;
      // A POST may carry several events (batched like Meta's webhooks): count every one.
      for (const e of JSON.parse(raw).entry)
        for (const { value: v } of e.changes) {
          for (const m of v.messages ?? []) got.messages.push(m.text.body);
          got.statuses += (v.statuses ?? []).length;
        }
      res.end();
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  await admin('PUT', `/businesses/${waba}/webhook`, {
    callback_url: `http://127.0.0.1:${receiver.address().port}/hook`,
    verify_token: 'v',
    max_concurrency: 64,
  });

  const users = Array.from({ length: 200 }, (_, i) => String(4915200000000 + i));
  const inbound = (u, body) => ({
    wamid: `wamid.${randomBytes(18).toString('base64url')}`,
    envelope_id: randomBytes(9).toString('base64url'),
    phone_number_id: pnid,
    from: { wa_id: u, device_id: 1 },
    identity_key_hash: 'ab'.repeat(32),
    identity_changed: false,
    sent_at: Date.now(),
    received_at: new Date().toISOString(),
    content: { type: 'text', text: { body } },
  });
  const subject = (name) => `${subjectRoot}.v1.${name}.${pnid}`;

  // 1) Inbound -> ordered webhooks for one number.
  let t0 = performance.now();
  const pubs = [];
  for (let i = 0; i < INBOUND; i++) {
    const u = users[i % users.length];
    pubs.push(js.publish(subject('inbound.message'), jc.encode(inbound(u, `m${i}`))));
    if (pubs.length >= 256) await Promise.all(pubs.splice(0));
  }
  await Promise.all(pubs);
  while (got.messages.length < INBOUND) await sleep(20);
  let secs = (performance.now() - t0) / 1000;
  const inOrder = got.messages.every((m, i) => m === `m${i}`);
  say(
    `inbound messages -> webhooks (one number, strictly ordered): ${INBOUND} in ${secs.toFixed(2)} s = ${(INBOUND / secs).toFixed(0)}/s, in order: ${inOrder}, bad signatures: ${got.badSig}`,
  );

  // 2) POST /messages throughput and latency.
  const lat = [];
  const wamids = [];
  let next = 0;
  let errors = 0;
  const codes = {};
  const cpuDb = new Client({ connectionString: dbUrl });
  await cpuDb.connect();
  let q0 = await queryCounts();
  let c0 = await cpuSeconds(cpuDb);
  t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < SENDS) {
        const i = next++;
        const s = performance.now();
        const r = await fetch(`${base}/v23.0/${pnid}/messages`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({
            messaging_product: 'whatsapp',
            to: users[i % users.length],
            text: { body: `out ${i}` },
          }),
        });
        const b = await r.json();
        lat.push(performance.now() - s);
        if (r.status === 200) wamids.push([b.messages[0].id, users[i % users.length]]);
        else {
          errors++;
          codes[b.error?.code] = (codes[b.error?.code] ?? 0) + 1;
        }
      }
    }),
  );
  secs = (performance.now() - t0) / 1000;
  say(
    `POST /messages (concurrency ${CONC}): ${SENDS} in ${secs.toFixed(2)} s = ${(SENDS / secs).toFixed(0)}/s, p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms, errors ${errors} ${JSON.stringify(codes)}`,
  );
  cpuPerMessage(c0, await cpuSeconds(cpuDb), SENDS);
  perMessage(q0, await queryCounts(), SENDS, 'sends');

  // 3) status.update -> status webhooks (parallel partitions, one per message).
  const n = Math.min(STATUSES, wamids.length);
  q0 = await queryCounts();
  c0 = await cpuSeconds(cpuDb);
  t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const [wamid, u] = wamids[i];
    pubs.push(
      js.publish(
        subject('status.update'),
        jc.encode({
          wamid,
          phone_number_id: pnid,
          recipient_id: u,
          status: 'sent',
          timestamp: new Date().toISOString(),
        }),
      ),
    );
    if (pubs.length >= 256) await Promise.all(pubs.splice(0));
  }
  await Promise.all(pubs);
  const db = new Client({ connectionString: dbUrl });
  await db.connect();
  for (;;) {
    const r = await db.query(
      `SELECT count(*)::int AS n FROM business_forwarding.webhook_events WHERE kind = 'status'`,
    );
    if (r.rows[0].n >= n) break;
    await sleep(20);
  }
  const recordedSecs = (performance.now() - t0) / 1000;
  await db.end();
  while (got.statuses < n) await sleep(20);
  secs = (performance.now() - t0) / 1000;
  say(
    `status.update -> status webhooks (${n} messages): recorded ${(n / recordedSecs).toFixed(0)}/s, delivered ${(n / secs).toFixed(0)}/s`,
  );
  cpuPerMessage(c0, await cpuSeconds(cpuDb), n);
  perMessage(q0, await queryCounts(), n, 'statuses (recorded and delivered)');
  await cpuDb.end();

  // 4) Backlog drain: receiver refuses while messages pile up, then accepts.
  receiver.close();
  receiver.closeAllConnections();
  const before = got.messages.length;
  const BACKLOG = Math.min(INBOUND, 2000);
  for (let i = 0; i < BACKLOG; i++) {
    pubs.push(js.publish(subject('inbound.message'), jc.encode(inbound(users[i % users.length], `b${i}`))));
    if (pubs.length >= 256) await Promise.all(pubs.splice(0));
  }
  await Promise.all(pubs);
  await sleep(3000);
  const addr = Number(new URL((await admin('GET', `/businesses/${waba}/webhook`)).callback_url).port);
  await new Promise((r) => receiver.listen(addr, '127.0.0.1', r));
  await admin('POST', `/businesses/${waba}/webhook/dead_letters/replay`, {});
  t0 = performance.now();
  while (got.messages.length < before + BACKLOG) await sleep(20);
  secs = (performance.now() - t0) / 1000;
  say(
    `backlog of ${BACKLOG} after an outage drained in ${secs.toFixed(2)} s (includes the pending backoff of the first event), in order: ${got.messages.slice(before).every((m, i) => m === `b${i}`)}`,
  );

  receiver.close();
  receiver.closeAllConnections();
  await pgAdmin.end();
}

// A bench stopped from outside must not leave its service process behind.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    proc?.kill('SIGKILL');
    process.exit(130);
  });
}

main()
  .catch((err) => {
    process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    proc?.kill('SIGTERM');
    await sleep(500);
    await nc?.close().catch(() => undefined);
    if (nc) {
      const c = await connect({ servers: NATS });
      const jsm = await c.jetstreamManager();
      for await (const s of jsm.streams.list()) {
        if (s.config.name.startsWith(subjectRoot.toUpperCase() + '_'))
          await jsm.streams.delete(s.config.name);
      }
      await c.close();
    }
    const c = new Client({ connectionString: PG });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await c.end();
    rmSync(countsFile, { force: true });
    void randomUUID;
  });
