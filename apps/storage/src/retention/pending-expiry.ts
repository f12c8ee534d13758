import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, NatsBus } from '@relay/platform';
import type { StorageConfig } from '../config';
import { inTx, type StoreDb } from '../db/store-db';
import { UNDELIVERABLE } from '../messages/status-writer';

interface ExpiredRow {
  wa_id: string;
  device_id: number;
  seq: string;
  wamid: string;
  phone_number_id: string;
}

/**
 * Queued messages that reached the retention limit leave the queue, and the business learns the message
 * failed (131026) unless some device of the user received it. The failed status is stored by JetStream
 * before the rows are deleted (same transaction as the delete); a crash in between only repeats the
 * publish, which JetStream (msgId) and every consumer (wamid + status) deduplicate.
 */
@Injectable()
export class PendingExpiry {
  constructor(
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(APP_CONFIG) private readonly config: StorageConfig,
  ) {}

  async expire(db: StoreDb, now: Date, dataCutoff: Date): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await inTx(db, async (tx) => {
        const rows = (await tx.query(
          `SELECT wa_id, device_id, seq, wamid, phone_number_id FROM storage.pending
           WHERE expires_at <= $1 OR created_at <= $2 ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED`,
          [now, dataCutoff, this.config.PURGE_BATCH_SIZE],
        )) as ExpiredRow[];
        if (rows.length === 0) return 0;
        const byWamid = new Map(rows.map((r) => [r.wamid, r]));
        const settled = (await tx.query(
          `SELECT DISTINCT wamid FROM storage.message_statuses WHERE wamid = ANY($1) AND status IN ('delivered', 'read', 'failed')
           UNION SELECT wamid FROM storage.status_marks WHERE wamid = ANY($1) AND status = 'failed'`,
          [[...byWamid.keys()]],
        )) as { wamid: string }[];
        for (const s of settled) byWamid.delete(s.wamid);
        await Promise.all(
          [...byWamid.values()].map((r) =>
            this.bus.publish(
              'status.update',
              { phone_number_id: r.phone_number_id },
              {
                wamid: r.wamid,
                phone_number_id: r.phone_number_id,
                recipient_id: r.wa_id,
                status: 'failed',
                timestamp: now.toISOString(),
                errors: [
                  {
                    code: UNDELIVERABLE.code,
                    title: UNDELIVERABLE.title,
                    details: 'The message was not delivered within the retention period.',
                  },
                ],
              },
              { msgId: `failed.${r.wamid}` },
            ),
          ),
        );
        if (byWamid.size > 0) {
          await tx.query(
            `INSERT INTO storage.status_marks (wamid, status, created_at) SELECT w, 'failed', $2 FROM unnest($1::text[]) AS w ON CONFLICT DO NOTHING`,
            [[...byWamid.keys()], now],
          );
        }
        await tx.query(
          `DELETE FROM storage.pending p USING unnest($1::text[], $2::smallint[], $3::bigint[]) AS d(w, dev, s)
           WHERE p.wa_id = d.w AND p.device_id = d.dev AND p.seq = d.s`,
          [rows.map((r) => r.wa_id), rows.map((r) => r.device_id), rows.map((r) => r.seq)],
        );
        return rows.length;
      });
      total += n;
      if (n < this.config.PURGE_BATCH_SIZE) return total;
    }
  }
}
