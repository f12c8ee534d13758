import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataKeyStore, KeyRing, LocalKeyProvider } from '@relay/envelope-crypto';
import type { EventPayload } from '@relay/protocol';
import { waitFor } from '@relay/testing';
import { StorageHarness } from './__fixtures__/harness';
import { StorageProcess } from './__fixtures__/process';
import { inbound, newNumberId, newWaId, newWamid, registered } from './__fixtures__/events';
import { DAY_MS } from './time';

let h: StorageHarness;
let proc: StorageProcess;
let ring: KeyRing;
const pn = newNumberId();

async function consumerReady(durable: string, stream: string) {
  const jsm = await h.nc.jetstreamManager();
  await waitFor(
    () => jsm.consumers.info(`${h.root.toUpperCase()}_${stream}`, durable).then(() => true),
    20_000,
  );
}

/** Every row opens under its AAD: nothing half-written, nothing torn. */
async function assertAllReadable(sql: string, aad: (r: Record<string, string>) => string, column: string) {
  const rows = (await h.pool().query(sql)).rows as Record<string, string & Buffer>[];
  for (const r of rows) await ring.decrypt(r.phone_number_id, r[column], aad(r));
  return rows.length;
}

beforeAll(async () => {
  h = await StorageHarness.create('crash', {
    env: { PURGE_BATCH_SIZE: '50', CONSUMER_CONCURRENCY: '64', CONSUMER_ACK_WAIT_MS: '2000' },
  });
  proc = new StorageProcess(h.env);
  const q = {
    query: (s: string, p?: unknown[]) =>
      h
        .pool()
        .query(s, p)
        .then((r) => r.rows),
  };
  ring = new KeyRing(new DataKeyStore(q, 'storage'), new LocalKeyProvider(String(h.env.MASTER_KEY)));
});
afterAll(async () => {
  await proc?.kill9();
  await h?.close();
});

describe('kill -9', () => {
  it('during writes: no partial record, no acknowledged message lost, all written after restart', async () => {
    proc.start();
    await consumerReady('storage-inbound', 'INBOUND');
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: pn },
      registered(pn, new Date()),
    );
    const users = Array.from({ length: 50 }, newWaId);
    const total = 4000;
    const bySeq = new Map<number, string>();
    const publishing = (async () => {
      for (let i = 0; i < total; i += 200) {
        const batch = Array.from({ length: 200 }, (_, j) =>
          inbound(pn, users[(i + j) % 50], `n${i + j}`, new Date()),
        );
        const acks = await Promise.all(
          batch.map((m) => h.producer.publish('inbound.message', { phone_number_id: pn }, m)),
        );
        acks.forEach((a, j) => bySeq.set(a.seq, batch[j].wamid));
      }
    })();
    await waitFor(async () => (await h.count('default', 'messages')) >= 600, 30_000, 5);
    await proc.kill9();
    await publishing;

    // Everything the consumer acknowledged before the kill is in the database.
    const jsm = await h.nc.jetstreamManager();
    const info = await jsm.consumers.info(`${h.root.toUpperCase()}_INBOUND`, 'storage-inbound');
    const ackedWamids = [...bySeq].filter(([seq]) => seq <= info.ack_floor.stream_seq).map(([, w]) => w);
    expect(ackedWamids.length).toBeGreaterThan(0);
    const stored = await h
      .pool()
      .query(`SELECT count(*)::int AS n FROM storage.messages WHERE wamid = ANY($1)`, [ackedWamids]);
    expect(stored.rows[0].n).toBe(ackedWamids.length);
    const atKill = await h.count('default', 'messages');
    expect(atKill).toBeLessThan(total);
    expect(
      await assertAllReadable(
        `SELECT phone_number_id, wamid, body_sealed FROM storage.messages`,
        (r) => `msg:${r.wamid}`,
        'body_sealed',
      ),
    ).toBe(atKill);

    proc.start();
    await waitFor(async () => (await h.count('default', 'messages')) === total, 60_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(await h.count('default', 'messages')).toBe(total);
    expect(await h.count('default', 'contacts')).toBe(users.length);
    await assertAllReadable(
      `SELECT phone_number_id, wamid, body_sealed FROM storage.messages`,
      (r) => `msg:${r.wamid}`,
      'body_sealed',
    );
    await proc.stop();
  });

  it('during a purge: nothing half-deleted, every expired queued message reported failed, the next start finishes', async () => {
    const statuses = (await h.events('status.update')) as EventPayload<'status.update'>[];
    const old = new Date(Date.now() - 31 * DAY_MS);
    const fresh = new Date();
    const expiredMessages = 30_000;
    const expiredPending = 1_000;
    await seedMessages(expiredMessages, old);
    await seedMessages(50, fresh);
    const pendingWamids = await seedPending(expiredPending, old);
    const before = await h.count('default', 'messages');

    proc.start(); // purges at start
    await waitFor(async () => (await h.count('default', 'messages')) < before - 1000, 30_000, 5);
    await proc.kill9();
    const left = await h.count('default', 'messages', 'created_at < $1', [
      new Date(Date.now() - 30 * DAY_MS),
    ]);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(expiredMessages);
    await assertAllReadable(
      `SELECT phone_number_id, wamid, body_sealed FROM storage.messages`,
      (r) => `msg:${r.wamid}`,
      'body_sealed',
    );
    // A queued message only leaves the queue once its failed status is in JetStream.
    const stillQueued = new Set(
      ((await h.pool().query(`SELECT wamid FROM storage.pending`)).rows as { wamid: string }[]).map(
        (r) => r.wamid,
      ),
    );
    const removed = pendingWamids.filter((w) => !stillQueued.has(w));
    await waitFor(() => {
      const failed = new Set(statuses.filter((s) => s.status === 'failed').map((s) => s.wamid));
      return removed.every((w) => failed.has(w));
    });

    proc.start({ PURGE_INTERVAL_MS: '1000' });
    await waitFor(async () => (await h.count('default', 'messages')) === 4000 + 50, 60_000);
    expect(await h.count('default', 'pending')).toBe(0);
    await waitFor(() => {
      const failed = new Set(statuses.filter((s) => s.status === 'failed').map((s) => s.wamid));
      return pendingWamids.every((w) => failed.has(w));
    });
    // And on the schedule: data that expires while the service runs goes at the next interval.
    await seedMessages(100, old);
    await waitFor(async () => (await h.count('default', 'messages')) === 4000 + 50, 10_000);
    const purges = await h
      .pool()
      .query(`SELECT count(*)::int AS n FROM storage.audit_log WHERE action = 'purge'`);
    expect(purges.rows[0].n).toBeGreaterThanOrEqual(1);
    await proc.stop();
  });
});

async function seedMessages(n: number, createdAt: Date): Promise<void> {
  const c = new Client({ connectionString: h.db.url });
  await c.connect();
  try {
    for (let i = 0; i < n; i += 5000) {
      const wamids = Array.from({ length: Math.min(5000, n - i) }, newWamid);
      const bodies = await Promise.all(
        wamids.map((w) => ring.encrypt(pn, Buffer.from('{"old":true}'), `msg:${w}`)),
      );
      await c.query(
        `INSERT INTO storage.messages (wamid, phone_number_id, direction, wa_id, created_at, expires_at, body_sealed)
         SELECT w, $2, 'in', '4911111111', $3, $4, b FROM unnest($1::text[], $5::bytea[]) AS t(w, b)`,
        [wamids, pn, createdAt, new Date(createdAt.getTime() + 30 * DAY_MS), bodies],
      );
    }
  } finally {
    await c.end();
  }
}

async function seedPending(n: number, createdAt: Date): Promise<string[]> {
  const wamids = Array.from({ length: n }, newWamid);
  const sealed = await Promise.all(
    wamids.map((w) => ring.encrypt(pn, randomBytes(48), `pending:${w}:4922222222:1`)),
  );
  await h.pool().query(
    `INSERT INTO storage.pending (wa_id, device_id, seq, wamid, phone_number_id, type, created_at, expires_at, ciphertext_sealed)
     SELECT '4922222222', 1, s, w, $2, 'whisper', $3, $4, b FROM unnest($1::text[], $5::bytea[], $6::bigint[]) AS t(w, b, s)`,
    [wamids, pn, createdAt, new Date(createdAt.getTime() + 30 * DAY_MS), sealed, wamids.map((_, i) => i + 1)],
  );
  return wamids;
}
