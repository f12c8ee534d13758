/**
 * Queues a batch of device ciphertexts in one statement, numbering them per device. The gateway pages a
 * device's queue with after_seq for the whole life of a connection, so a seq must never become visible
 * after a higher one: each device has a counter row, locked by the statement that queues its messages
 * until it commits, so seqs are visible in the order they were handed out. Counter rows are locked in key
 * order: concurrent batches never deadlock. Values start from the clock (ms * 1000), so a device's queue
 * also orders across regional databases, and a purged counter restarts above every value it handed out
 * before. Within a device, items are numbered in the order given (the caller sorts them by stream
 * sequence: oldest first). A row already queued (same device and wamid) stays as it is. The counter row
 * also keeps the device's cursor: the highest DELIVERY stream sequence queued for it.
 *
 * Parameters: $1..$8 the columns (wa_id, device_id, wamid, phone_number_id, type, created_at,
 * expires_at, ciphertext_sealed) as arrays, $9 the clock base, $10 now, $11 the stream sequences.
 */
export const QUEUE_SQL = `
WITH items AS (
  SELECT * FROM unnest($1::text[], $2::smallint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::bytea[], $11::bigint[])
    WITH ORDINALITY AS t(w, d, wamid, pn, type, created, expires, sealed, stream, ord)
),
counts AS (SELECT w, d, count(*) AS n, max(stream) AS stream FROM items GROUP BY w, d),
counters AS (
  INSERT INTO storage.device_counters (wa_id, device_id, last_seq, updated_at, stream_seq)
  SELECT w, d, $9::bigint + n, $10, stream FROM counts ORDER BY w, d
  ON CONFLICT (wa_id, device_id) DO UPDATE SET
    last_seq = GREATEST(storage.device_counters.last_seq, $9::bigint) + (EXCLUDED.last_seq - $9::bigint),
    updated_at = EXCLUDED.updated_at,
    stream_seq = GREATEST(storage.device_counters.stream_seq, EXCLUDED.stream_seq)
  RETURNING wa_id, device_id, last_seq
)
INSERT INTO storage.pending (wa_id, device_id, seq, wamid, phone_number_id, type, created_at, expires_at, ciphertext_sealed)
SELECT i.w, i.d, c.last_seq - k.n + row_number() OVER (PARTITION BY i.w, i.d ORDER BY i.ord),
       i.wamid, i.pn, i.type, i.created, i.expires, i.sealed
FROM items i
JOIN counts k ON k.w = i.w AND k.d = i.d
JOIN counters c ON c.wa_id = i.w AND c.device_id = i.d
ORDER BY i.ord
ON CONFLICT DO NOTHING`;
