// Benchmark (not a test): sustained write throughput of the storage service and bytes stored per message.
// Runs the built service (dist/, `npm run build` first) as its own process against a fresh database and a
// private NATS subject root, feeds it a stream of events as fast as JetStream takes them, and measures
// from the first publish until the last row is committed.
//   node bench/storage/write-throughput.mjs [messages=20000]
// Env: BENCH_PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres), BENCH_NATS_URL.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { createStorageDatabase, spawnStorage, storageReady, teardown, until } from './storage-process.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const { Client } = require('pg');
const { connect } = require('nats');

const N = Number(process.argv[2] ?? 20_000);
const ADMIN = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
const subjectRoot = `bench${randomBytes(4).toString('hex')}`;
const pn = '1234567890';
const log = (...a) => process.stdout.write(a.join(' ') + '\n');

const { admin, dbName, dbUrl } = await createStorageDatabase(root, ADMIN, 'relay_bench_storage');
const db = new Client({ connectionString: dbUrl });
await db.connect();
const nc = await connect({ servers: NATS_URL });
const js = nc.jetstream();
const enc = (v) => new TextEncoder().encode(JSON.stringify(v));

const child = spawnStorage(root, {
  dbUrl,
  natsUrl: NATS_URL,
  subjectRoot,
  env: process.env.CONSUMER_CONCURRENCY ? { CONSUMER_CONCURRENCY: process.env.CONSUMER_CONCURRENCY } : {},
});

try {
  await storageReady(await nc.jetstreamManager(), subjectRoot);

  const users = Array.from({ length: 1000 }, (_, i) => String(4915100000000 + i));
  const now = () => new Date().toISOString();
  const body = 'x'.repeat(120); // a typical short chat message
  const wamid = (i, kind) => `wamid.${kind}${String(i).padStart(10, '0')}`;

  log(`storage write benchmark: ${N} events per phase, ${cpus().length} CPUs, one storage process`);
  const rows = {};
  rows.inbound = await phase('inbound messages', 'messages', `direction = 'in'`, (i) => [
    `${subjectRoot}.v1.inbound.message.${pn}`,
    {
      wamid: wamid(i, 'in'),
      envelope_id: `env${String(i).padStart(10, '0')}`,
      phone_number_id: pn,
      from: { wa_id: users[i % users.length], device_id: 1 },
      profile_name: 'Bench User',
      identity_key_hash: 'a'.repeat(64),
      identity_changed: false,
      sent_at: Date.now(),
      received_at: now(),
      content: { type: 'text', text: { body } },
    },
  ]);
  rows.outbound = await phase('outbound messages', 'messages', `direction = 'out'`, (i) => [
    `${subjectRoot}.v1.outbound.request.${pn}`,
    {
      wamid: wamid(i, 'out'),
      phone_number_id: pn,
      to: users[i % users.length],
      content: { type: 'text', text: { body } },
      accepted_at: now(),
    },
  ]);
  await phase('statuses (delivered)', 'message_statuses', `status = 'delivered'`, (i) => [
    `${subjectRoot}.v1.status.update.${pn}`,
    {
      wamid: wamid(i, 'out'),
      phone_number_id: pn,
      recipient_id: users[i % users.length],
      device_id: 1,
      status: 'delivered',
      timestamp: now(),
    },
  ]);
  const ct = randomBytes(180).toString('base64');
  await phase('queued device ciphertexts (+ sent status)', 'pending', 'true', (i) => [
    `${subjectRoot}.v1.delivery.ciphertext.${users[i % users.length]}.1`,
    {
      wamid: wamid(i, 'out'),
      phone_number_id: pn,
      to: { wa_id: users[i % users.length], device_id: 1 },
      type: 'whisper',
      ciphertext: ct,
      created_at: now(),
    },
  ]);

  await db.query(
    'VACUUM ANALYZE storage.messages, storage.message_statuses, storage.pending, storage.contacts',
  );
  const size = async (t) =>
    Number((await db.query(`SELECT pg_total_relation_size('storage.${t}') AS b`)).rows[0].b);
  const msgBytes = await size('messages');
  const stBytes = await size('message_statuses');
  const pendBytes = await size('pending');
  const contactBytes = await size('contacts');
  const messages = 2 * N;
  log('');
  log(`bytes stored per message (table + indexes, ${body.length}-char text body):`);
  log(`  messages        ${(msgBytes / messages).toFixed(0)} B/message`);
  log(`  statuses        ${(stBytes / (2 * N)).toFixed(0)} B/status (sent + delivered per outbound message)`);
  log(`  pending queue   ${(pendBytes / N).toFixed(0)} B/queued ciphertext (180-byte ciphertext)`);
  log(
    `  contacts        ${(contactBytes / 1024).toFixed(0)} kB for ${users.length} contacts (updated on every message and status)`,
  );
  log(
    `  all tables      ${((msgBytes + stBytes + pendBytes + contactBytes) / messages).toFixed(0)} B per message overall`,
  );
} finally {
  await db.end();
  await teardown({ child, nc, subjectRoot, admin, dbName });
}

/** Publishes N events (1000 in flight) and waits until the N rows are committed; prints the rate. */
async function phase(label, table, where, make) {
  const count = async () =>
    Number((await db.query(`SELECT count(*)::int AS n FROM storage.${table} WHERE ${where}`)).rows[0].n);
  const base = await count();
  const t0 = process.hrtime.bigint();
  const inflight = new Set();
  for (let i = 0; i < N; i++) {
    const [subject, payload] = make(i);
    const p = js.publish(subject, enc(payload)).finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= 1000) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  const published = Number(process.hrtime.bigint() - t0) / 1e9;
  await until(async () => (await count()) - base >= N, 300_000, 20);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  log(
    `  ${label.padEnd(42)} ${(N / secs).toFixed(0).padStart(6)} /s sustained (${N} in ${secs.toFixed(2)} s; published in ${published.toFixed(2)} s)`,
  );
  return N;
}
