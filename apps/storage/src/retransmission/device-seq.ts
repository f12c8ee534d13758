import type { DeviceCiphertext } from '@relay/protocol';
import { rowsOf, type Tx } from '../db/store-db';

/**
 * Per-device queue sequence numbers. The gateway pages a device's queue with after_seq for the whole
 * life of a connection, so a seq must never become visible after a higher one: each device has a counter
 * row, locked by the transaction that queues its messages until it commits, so seqs are visible in the
 * order they were handed out. Values start from the clock (ms * 1000), so a device's queue also orders
 * across regional databases, and a purged counter restarts above every value it handed out before.
 */
export async function allocateSeqs(tx: Tx, items: DeviceCiphertext[], now: Date): Promise<string[]> {
  const counts = new Map<string, { waId: string; deviceId: number; n: number }>();
  for (const c of items) {
    const key = deviceKey(c);
    const cur = counts.get(key) ?? { waId: c.to.wa_id, deviceId: c.to.device_id, n: 0 };
    cur.n++;
    counts.set(key, cur);
  }
  // Counter rows are locked in key order: concurrent batches never deadlock.
  const devices = [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, d]) => d);
  const base = now.getTime() * 1000;
  const rows = rowsOf<{ wa_id: string; device_id: number; last_seq: string }>(
    await tx.query(
      `INSERT INTO storage.device_counters (wa_id, device_id, last_seq, updated_at)
       SELECT w, d, $4::bigint + n, $5 FROM unnest($1::text[], $2::smallint[], $3::bigint[]) AS t(w, d, n)
       ON CONFLICT (wa_id, device_id) DO UPDATE SET
         last_seq = GREATEST(storage.device_counters.last_seq, $4::bigint) + (EXCLUDED.last_seq - $4::bigint),
         updated_at = EXCLUDED.updated_at
       RETURNING wa_id, device_id, last_seq`,
      [devices.map((d) => d.waId), devices.map((d) => d.deviceId), devices.map((d) => d.n), base, now],
    ),
  );
  const next = new Map<string, bigint>();
  for (const r of rows) {
    const key = `${r.wa_id}|${r.device_id}`;
    next.set(key, BigInt(r.last_seq) - BigInt(counts.get(key)?.n ?? 0) + 1n);
  }
  // Items keep their order (the caller sorts them by stream sequence): oldest first per device.
  return items.map((c) => {
    const key = deviceKey(c);
    const seq = next.get(key) ?? 0n;
    next.set(key, seq + 1n);
    return seq.toString();
  });
}

const deviceKey = (c: DeviceCiphertext) => `${c.to.wa_id}|${c.to.device_id}`;
