// Benchmark (not a test): the outbound delivery path through storage, counted in Postgres statements.
// Runs the built storage service (dist/, `npm run build` first) as its own process, with every statement it
// sends counted (count-queries.cjs), and plays the gateway in this process with the gateway's own delivery
// code (DeliveryPump, AckBatcher) and simulated devices that ack each message as it arrives. Feeds
// outbound.request + delivery.ciphertext (what business-forwarding and crypto publish) for M messages to D
// devices of two numbers, and measures until every device acked every message.
//   node bench/storage/delivery-path.mjs [messages=2000] [devices=50]
// Env: BENCH_ROOT (another checkout's built tree, to measure it with this script), BENCH_PG_ADMIN_URL,
// BENCH_NATS_URL, BENCH_RATE (messages/s offered, default: as fast as JetStream takes them).
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from '../relay/proc.mjs';
import { createStorageDatabase, spawnStorage, storageReady, teardown, until } from './storage-process.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = process.env.BENCH_ROOT ?? join(here, '../..');
const require = createRequire(import.meta.url);
const { Client } = require('pg');
const { connect } = require('nats');
const pino = require('pino');
const { Registry } = require('prom-client');
const dist = (p) => require(join(root, 'dist', p));
const { NatsBus } = dist('libs/platform/src/index.js');
const { DeliveryPump } = dist('apps/gateway/src/delivery/delivery-pump.js');
const { AckBatcher } = dist('apps/gateway/src/delivery/ack-batcher.js');

const M = Number(process.argv[2] ?? 2000);
const D = Number(process.argv[3] ?? 50);
const RATE = Number(process.env.BENCH_RATE ?? 0);
const WINDOW = 64;
const ADMIN = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
const subjectRoot = `bench${randomBytes(4).toString('hex')}`;
const numbers = ['1234567890', '1234567891'];
const log = (...a) => process.stdout.write(a.join(' ') + '\n');

const { admin, dbName, dbUrl } = await createStorageDatabase(root, ADMIN, 'relay_bench_delivery');
const countsFile = join(tmpdir(), `${dbName}.json`);
const nc = await connect({ servers: NATS_URL });
const jsm = await nc.jetstreamManager();
const logger = pino({ level: 'warn' });
const bus = new NatsBus(nc, nc.jetstream(), jsm, subjectRoot, 'gateway', logger, new Registry());

const child = spawnStorage(root, {
  dbUrl,
  natsUrl: NATS_URL,
  subjectRoot,
  nodeArgs: ['--require', join(here, 'count-queries.cjs')],
  env: { BENCH_QUERY_COUNTS_FILE: countsFile },
});

try {
  await storageReady(jsm, subjectRoot);
  const at = new Date().toISOString();
  for (const pn of numbers) {
    await bus.publish(
      'business.number_registered',
      { phone_number_id: pn },
      { phone_number_id: pn, waba_id: '777', display_phone_number: '+1 555 0100', retention_days: 30, at },
    );
  }
  // Let the registrations land before counting.
  await new Promise((r) => setTimeout(r, 1000));

  // The gateway side: one pump per connected device, acks through the gateway's per-connection batcher.
  const devices = Array.from({ length: D }, (_, i) => ({ waId: String(4915100000000 + i), deviceId: 1 }));
  const received = new Map();
  let delivered = 0;
  let storageAcks = 0;
  let storagePendingCalls = 0;
  const pumps = new Map();
  const request = bus.request.bind(bus);
  bus.request = (name, payload) => {
    if (name === 'storage.pending') storagePendingCalls++;
    if (name === 'storage.ack') storageAcks++;
    return request(name, payload);
  };
  for (const device of devices) {
    const key = `${device.waId}.${device.deviceId}`;
    received.set(key, new Set());
    let pump;
    const batcher = new AckBatcher(async (frames) => {
      const wamids = [...new Set(frames.flatMap((f) => f.wamids))];
      await Promise.all(
        wamids.map((wamid) =>
          bus.publish(
            'status.update',
            { phone_number_id: pump.inflight.get(wamid) },
            {
              wamid,
              phone_number_id: pump.inflight.get(wamid),
              recipient_id: device.waId,
              device_id: device.deviceId,
              status: 'delivered',
              timestamp: new Date().toISOString(),
            },
            { msgId: `delivered.${wamid}.${device.waId}.${device.deviceId}` },
          ),
        ),
      );
      await bus.request('storage.ack', { to: { wa_id: device.waId, device_id: device.deviceId }, wamids });
      pump.acked(wamids);
    });
    const conn = {
      open: true,
      key,
      device,
      onClose: () => undefined,
      send: (frame) => {
        if (frame.type === 'message') {
          const seen = received.get(key);
          if (!seen.has(frame.wamid)) {
            seen.add(frame.wamid);
            delivered++;
          }
          // The device acks each message once it decrypted it (next turn).
          setImmediate(() => void batcher.add({ type: 'ack', id: frame.wamid, wamids: [frame.wamid] }));
        }
        return true;
      },
    };
    pump = new DeliveryPump(conn, bus, WINDOW, logger);
    pumps.set(key, pump);
  }
  bus.onNotify('device.pending', (n) => pumps.get(`${n.to.wa_id}.${n.to.device_id}`)?.drain());
  await nc.flush();
  for (const p of pumps.values()) p.drain();
  await new Promise((r) => setTimeout(r, 500));
  const before = await counts();
  const cpu0 = cpuSeconds(child.pid);
  const self0 = process.cpuUsage();

  log(
    `storage delivery-path benchmark: ${M} outbound messages to ${D} devices (${numbers.length} numbers), one storage process`,
  );
  const t0 = process.hrtime.bigint();
  const inflight = new Set();
  const body = 'x'.repeat(120);
  const ct = randomBytes(180).toString('base64');
  for (let i = 0; i < M; i++) {
    const d = devices[i % D];
    const pn = numbers[i % numbers.length];
    const wamid = `wamid.bench${String(i).padStart(10, '0')}`;
    const now = new Date().toISOString();
    for (const p of [
      bus.publish(
        'outbound.request',
        { phone_number_id: pn },
        {
          wamid,
          phone_number_id: pn,
          to: d.waId,
          content: { type: 'text', text: { body } },
          accepted_at: now,
        },
      ),
      bus.publish(
        'delivery.ciphertext',
        { wa_id: d.waId, device_id: d.deviceId },
        {
          wamid,
          phone_number_id: pn,
          to: { wa_id: d.waId, device_id: d.deviceId },
          type: 'whisper',
          ciphertext: ct,
          created_at: now,
        },
      ),
    ]) {
      const q = p.finally(() => inflight.delete(q));
      inflight.add(q);
    }
    if (inflight.size >= 1000) await Promise.race(inflight);
    if (RATE > 0) {
      const due = Number(t0) / 1e6 + (i * 1000) / RATE;
      const wait = due - Number(process.hrtime.bigint()) / 1e6;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }
  await Promise.all(inflight);
  await until(async () => delivered >= M, 300_000, 20);
  const db = new Client({ connectionString: dbUrl });
  await db.connect();
  await until(
    async () =>
      Number((await db.query(`SELECT count(*)::int AS n FROM storage.pending`)).rows[0].n) === 0 &&
      Number(
        (await db.query(`SELECT count(*)::int AS n FROM storage.message_statuses WHERE status = 'delivered'`))
          .rows[0].n,
      ) >= M,
    300_000,
    20,
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const storageCpu = cpuSeconds(child.pid) - cpu0;
  const self = process.cpuUsage(self0);
  await new Promise((r) => setTimeout(r, 300));
  const after = await counts();
  const audit = Number((await db.query(`SELECT count(*)::int AS n FROM storage.audit_log`)).rows[0].n);
  await db.end();

  const diff = Object.entries(after)
    .map(([k, v]) => [k, v - (before[k] ?? 0)])
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1]);
  const total = diff.reduce((n, [, v]) => n + v, 0);
  log(
    `  delivered and acked   ${M} in ${secs.toFixed(2)} s (${(M / secs).toFixed(0)} msg/s, every device acked every message)`,
  );
  log(
    `  CPU                   storage ${storageCpu.toFixed(2)} s (${((storageCpu * 1e6) / M).toFixed(0)} us/message), this process (publishers + gateway side) ${((self.user + self.system) / 1e6).toFixed(2)} s`,
  );
  log(`  gateway -> storage    ${storagePendingCalls} storage.pending, ${storageAcks} storage.ack`);
  log(`  audit rows            ${audit}`);
  log(`  pg statements         ${total} (${(total / M).toFixed(2)} per delivered message)`);
  for (const [k, v] of diff) log(`    ${String(v).padStart(7)}  ${k}`);
} finally {
  await teardown({ child, nc, subjectRoot, admin, dbName });
  rmSync(countsFile, { force: true });
}

async function counts() {
  rmSync(countsFile, { force: true });
  child.kill('SIGUSR2');
  let out;
  await until(
    async () => {
      try {
        out = JSON.parse(readFileSync(countsFile, 'utf8'));
        return true;
      } catch {
        return false;
      }
    },
    5000,
    20,
  );
  return out;
}
