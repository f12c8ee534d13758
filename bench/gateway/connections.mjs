// Benchmark (not a test): one gateway process holding N authenticated WebSocket connections.
// Prints the gateway's memory per connection and the outbound fan-out rate (messages pushed to devices
// and acknowledged by them). Needs `npm run build`, NATS at $BENCH_NATS_URL and Postgres at
// $BENCH_PG_ADMIN_URL (defaults: the local test servers).
//
//   node_modules/.bin/node bench/gateway/connections.mjs [--connections 5000] [--messages 4]
//
// What is real: the gateway (spawned `node dist/apps/gateway/src/main.js`), Postgres, NATS/JetStream,
// WebSocket clients with Basic credentials checked against the database, the ack path (storage.ack RPC
// + a 'delivered' status published to JetStream per message). What is not: devices are seeded straight
// into the gateway's tables (registering 5,000 devices through verification would measure that instead),
// the storage service is a responder in this process with an in-memory queue, and ciphertexts are
// random bytes (the gateway never decrypts).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const { connect } = require('nats');
const pg = require('pg');
const WebSocket = require('ws');
const { migrate } = require(join(root, 'dist/libs/platform/src/index.js'));
const { ensureStreams } = require(join(root, 'dist/libs/platform/src/index.js'));
const { rpcSubject, notifySubject } = require(join(root, 'dist/libs/protocol/src/index.js'));
const { gatewayDataSource } = require(join(root, 'dist/apps/gateway/src/data-source.js'));
const { freePort } = require(join(root, 'dist/libs/testing/src/index.js'));

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '5000' },
    messages: { type: 'string', default: '4' },
    batch: { type: 'string', default: '250' },
    'ack-each': { type: 'boolean', default: false },
  },
});
const N = Number(args.connections);
const K = Number(args.messages);
const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
const PG_ADMIN = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ROOT = `bench${randomBytes(3).toString('hex')}`;
const DB = `relay_bench_${randomBytes(4).toString('hex')}`;
const enc = (v) => new TextEncoder().encode(JSON.stringify(v));
const dec = (d) => JSON.parse(new TextDecoder().decode(d));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mb = (b) => (b / 1024 / 1024).toFixed(1);

async function admin(sql) {
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** Seeds N devices; each gets a random 32-byte secret (only its SHA-256 is stored, as in registration). */
async function seedDevices(url) {
  const ds = gatewayDataSource(url, 4);
  await migrate(ds);
  const devices = [];
  for (let i = 0; i < N; i += 1000) {
    const rows = [];
    const params = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) {
      const waId = String(4915000000000 + j);
      const password = randomBytes(32).toString('base64url');
      devices.push({ waId, password });
      const k = randomBytes(33);
      const p = params.length;
      rows.push(`($${p + 1}, 1, 1, $${p + 2}, $${p + 3}, 1, $${p + 3}, $${p + 3}, 2, $${p + 3}, $${p + 3})`);
      params.push(waId, createHash('sha256').update(password).digest(), k);
    }
    await ds.query(
      `INSERT INTO gateway.devices (wa_id, device_id, registration_id, secret_hash, identity_key, signed_prekey_id,
         signed_prekey, signed_prekey_signature, kyber_last_resort_id, kyber_last_resort_key,
         kyber_last_resort_signature) VALUES ${rows.join(',')}`,
      params,
    );
  }
  await ds.destroy();
  return devices;
}

/** The storage service's side of delivery: an in-memory queue per device behind the two RPCs. */
function storageStandIn(nc) {
  const queues = new Map();
  let seq = 0;
  const reply = (m, data) => m.respond(enc({ ok: true, data }));
  const pending = nc.subscribe(rpcSubject(ROOT, 'storage.pending'), { queue: 'storage' });
  const acks = nc.subscribe(rpcSubject(ROOT, 'storage.ack'), { queue: 'storage' });
  (async () => {
    for await (const m of pending) {
      const r = dec(m.data);
      const q = queues.get(`${r.to.wa_id}.${r.to.device_id}`) ?? [];
      reply(m, {
        items: q.filter((i) => r.after_seq === undefined || i.seq > r.after_seq).slice(0, r.limit),
      });
    }
  })();
  (async () => {
    for await (const m of acks) {
      const r = dec(m.data);
      const key = `${r.to.wa_id}.${r.to.device_id}`;
      const q = queues.get(key) ?? [];
      const keep = q.filter((i) => !r.wamids.includes(i.wamid));
      queues.set(key, keep);
      reply(m, { removed: q.length - keep.length });
    }
  })();
  return {
    enqueue(waId, count) {
      const q = queues.get(`${waId}.1`) ?? [];
      for (let i = 0; i < count; i++) {
        q.push({
          seq: ++seq,
          wamid: `wamid.${randomBytes(12).toString('base64url')}`,
          phone_number_id: '1555000000',
          type: 'whisper',
          ciphertext: randomBytes(300).toString('base64'),
          created_at: new Date().toISOString(),
        });
      }
      queues.set(`${waId}.1`, q);
    },
  };
}

/** CPU seconds (user + system) a process has used, from /proc (Linux). */
async function cpuSeconds(pid) {
  const { readFile } = await import('node:fs/promises');
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function metrics(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const read = (name) =>
    Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rss: read('process_resident_memory_bytes'),
    heap: read('nodejs_heap_size_used_bytes'),
    external: read('nodejs_external_memory_bytes'),
  };
}

async function main() {
  await admin(`CREATE DATABASE "${DB}"`);
  const dbUrl = PG_ADMIN.replace(/\/[^/]*$/, `/${DB}`);
  const nc = await connect({ servers: NATS_URL });
  await ensureStreams(await nc.jetstreamManager(), { root: ROOT, retentionDays: 1 });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let gateway;
  try {
    const t0 = Date.now();
    const devices = await seedDevices(dbUrl);
    console.log(`seeded ${N} devices in ${Date.now() - t0} ms`);
    const storage = storageStandIn(nc);
    gateway = spawn(
      process.execPath,
      [
        ...(process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean),
        join(root, 'dist/apps/gateway/src/main.js'),
      ],
      {
        env: {
          ...process.env,
          NODE_ENV: 'test',
          LOG_LEVEL: 'warn',
          HTTP_HOST: '127.0.0.1',
          HTTP_PORT: String(port),
          NATS_URL,
          NATS_SUBJECT_ROOT: ROOT,
          DATABASE_URL: dbUrl,
          DATABASE_POOL_SIZE: '8',
          RATE_LIMIT_IP: '1000000:1',
          WS_HEARTBEAT_MS: '30000',
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    for (let i = 0; ; i++) {
      if (
        await fetch(`${base}/health`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (i > 200) throw new Error('gateway did not start');
      await sleep(100);
    }
    await sleep(500);
    const before = await metrics(base);

    // ---- N authenticated connections
    const sockets = [];
    let received = 0;
    let acked = 0;
    const inflightAcks = new Map();
    let ackFrames = 0;
    const tc = Date.now();
    const cpuConnect0 = await cpuSeconds(gateway.pid);
    for (let i = 0; i < N; i += Number(args.batch)) {
      await Promise.all(
        devices.slice(i, i + Number(args.batch)).map(
          (d) =>
            new Promise((resolve, reject) => {
              const auth = `Basic ${Buffer.from(`${d.waId}.1:${d.password}`).toString('base64')}`;
              const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/websocket`, {
                headers: { authorization: auth },
              });
              ws.on('open', () => resolve());
              ws.on('error', reject);
              // Acks as the SDK sends them: what arrived within 10 ms goes in one frame (or one per
              // message with --ack-each).
              let unacked = [];
              let timer;
              const flush = () => {
                timer = undefined;
                const wamids = unacked;
                unacked = [];
                const id = `a${++ackFrames}`;
                ws.send(JSON.stringify({ type: 'ack', id, wamids }));
                inflightAcks.set(id, wamids.length);
              };
              ws.on('message', (data) => {
                const f = JSON.parse(data.toString());
                if (f.type === 'message') {
                  received++;
                  unacked.push(f.wamid);
                  if (args['ack-each']) flush();
                  else timer ??= setTimeout(flush, 10);
                } else if (f.type === 'result') {
                  acked += inflightAcks.get(f.id) ?? 0;
                  inflightAcks.delete(f.id);
                } else if (f.type === 'error') console.error('error frame', f);
              });
              sockets.push(ws);
            }),
        ),
      );
    }
    const connectMs = Date.now() - tc;
    const cpuConnect = (await cpuSeconds(gateway.pid)) - cpuConnect0;
    await sleep(3000); // let the initial (empty) drains and allocations settle
    const after = await metrics(base);

    // ---- fan-out: K messages queued for every device, one wake-up each
    for (const d of devices) storage.enqueue(d.waId, K);
    const tf = Date.now();
    const cpuFan0 = await cpuSeconds(gateway.pid);
    const benchCpu0 = process.cpuUsage();
    for (const d of devices)
      nc.publish(
        notifySubject(ROOT, 'device.pending', { wa_id: d.waId, device_id: 1 }),
        enc({ to: { wa_id: d.waId, device_id: 1 } }),
      );
    const total = N * K;
    let deliveredAt = 0;
    while (acked < total) {
      if (!deliveredAt && received >= total) deliveredAt = Date.now();
      if (Date.now() - tf > 180_000)
        throw new Error(`fan-out stalled: ${received} received, ${acked} acked of ${total}`);
      await sleep(20);
    }
    if (!deliveredAt) deliveredAt = Date.now();
    const ackedAt = Date.now();
    const cpuFan = (await cpuSeconds(gateway.pid)) - cpuFan0;
    const benchCpu = process.cpuUsage(benchCpu0);
    const peak = await metrics(base);

    const per = (k) => (after[k] - before[k]) / N;
    console.log(
      `\ngateway process, ${N} authenticated WebSocket connections (one process, ${process.platform})`,
    );
    console.log(
      `  connect: ${N} upgrades (Basic auth checked in Postgres) in ${connectMs} ms = ${Math.round((N / connectMs) * 1000)} conn/s`,
    );
    console.log(`  memory before: rss ${mb(before.rss)} MB, heap ${mb(before.heap)} MB`);
    console.log(`  memory with ${N} connections: rss ${mb(after.rss)} MB, heap ${mb(after.heap)} MB`);
    console.log(
      `  per connection: rss ${(per('rss') / 1024).toFixed(1)} KiB, heap ${(per('heap') / 1024).toFixed(1)} KiB`,
    );
    console.log(
      `  fan-out: ${total} messages (${K} per device) pushed in ${deliveredAt - tf} ms = ${Math.round((total / (deliveredAt - tf)) * 1000)} msg/s`,
    );
    console.log(
      `  with acks (${args['ack-each'] ? 'one ack frame per message' : 'acks batched per device over 10 ms, as the SDK does'}; storage.ack RPC + a 'delivered' status to JetStream per message): ${ackedAt - tf} ms = ${Math.round((total / (ackedAt - tf)) * 1000)} msg/s`,
    );
    console.log(
      `  gateway CPU: ${cpuConnect.toFixed(2)} s for the connects, ${cpuFan.toFixed(2)} s for the fan-out with acks; this bench process (clients + storage stand-in) used ${((benchCpu.user + benchCpu.system) / 1e6).toFixed(2)} s during the fan-out (2 cores shared with NATS and Postgres)`,
    );
    console.log(`  memory after fan-out: rss ${mb(peak.rss)} MB, heap ${mb(peak.heap)} MB`);
    for (const s of sockets) s.terminate();
  } finally {
    gateway?.kill('SIGTERM');
    await sleep(1000);
    const jsm = await nc.jetstreamManager();
    for await (const s of jsm.streams.list()) {
      if (
        s.config.name.startsWith(`${ROOT.toUpperCase()}_`) ||
        s.config.name === `KV_${ROOT}_gateway_rate_limits`
      ) {
        await jsm.streams.delete(s.config.name);
      }
    }
    await nc.close();
    await admin(`DROP DATABASE IF EXISTS "${DB}" WITH (FORCE)`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`benchmark failed: ${err.stack ?? err}`);
    process.exit(1);
  },
);
