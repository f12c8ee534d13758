import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataKeyDestroyedError, EnvelopeDecryptError } from '@relay/envelope-crypto';
import { APP_LOGGER, CLOCK, type Clock } from '@relay/platform';
import type { DeviceAddress, PendingItem } from '@relay/protocol';
import { audit } from '../audit/audit-log';
import { StorageDatabases } from '../db/storage-databases';
import { affected, type StoreDb } from '../db/store-db';
import { pendingAad } from './pending-writer';

/**
 * Base64 ciphertext per storage.pending reply: well inside NATS's 1 MiB message with the JSON around it.
 * A reply cut for size therefore still carries more than 256 KiB (an item is at most 512 KiB), which is
 * how the gateway tells a cut page from the end of the queue.
 */
export const MAX_REPLY_CIPHERTEXT_CHARS = 800 * 1024;

interface PendingRow {
  seq: string;
  wamid: string;
  phone_number_id: string;
  type: 'prekey' | 'whisper';
  created_at: Date;
  ciphertext_sealed: Buffer;
}

/**
 * The retransmission queue's read side (answers gateway's storage.pending / storage.ack). A device's
 * messages may sit in several regional databases; they are merged by seq. Every read of stored content
 * is audited in the database it came from.
 */
@Injectable()
export class PendingQueue {
  constructor(
    @Inject(StorageDatabases) private readonly dbs: StorageDatabases,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly log: Logger,
  ) {}

  async list(to: DeviceAddress, afterSeq: number, limit: number, actor: string): Promise<PendingItem[]> {
    const now = this.clock.now();
    const perDb = await Promise.all(
      this.dbs.all().map(async (db) => ({
        db,
        rows: (await db.ds.query(
          `SELECT seq, wamid, phone_number_id, type, created_at, ciphertext_sealed FROM storage.pending
           WHERE wa_id = $1 AND device_id = $2 AND seq > $3 AND expires_at > $4 ORDER BY seq LIMIT $5`,
          [to.wa_id, to.device_id, afterSeq, now, limit],
        )) as PendingRow[],
      })),
    );
    const merged = perDb
      .flatMap(({ db, rows }) => rows.map((row) => ({ db, row })))
      .sort((a, b) => (BigInt(a.row.seq) < BigInt(b.row.seq) ? -1 : 1))
      .slice(0, limit);
    const items: PendingItem[] = [];
    let bytes = 0;
    for (const { db, row } of merged) {
      const ct = await this.open(db, row, to);
      if (!ct) continue;
      const size = Math.ceil(ct.length / 3) * 4;
      // The reply must fit in one NATS message: fewer items than asked, never fewer than one.
      if (items.length > 0 && bytes + size > MAX_REPLY_CIPHERTEXT_CHARS) break;
      bytes += size;
      items.push({
        seq: Number(row.seq),
        wamid: row.wamid,
        phone_number_id: row.phone_number_id,
        type: row.type,
        ciphertext: ct.toString('base64'),
        created_at: row.created_at.toISOString(),
      });
    }
    const served = new Set(items.map((i) => i.wamid));
    await this.auditReads(
      merged.filter((m) => served.has(m.row.wamid)).map((m) => ({ db: m.db, wamid: m.row.wamid })),
      actor,
      now,
    );
    return items;
  }

  /**
   * A row whose business's data key was destroyed (erased) cannot be read by anyone any more; it is
   * skipped rather than failing the whole queue, and goes with the next purge or erase.
   */
  private async open(db: StoreDb, row: PendingRow, to: DeviceAddress): Promise<Buffer | null> {
    try {
      return await db.keys.decrypt(
        row.phone_number_id,
        row.ciphertext_sealed,
        pendingAad(row.wamid, to.wa_id, to.device_id),
      );
    } catch (err) {
      if (err instanceof DataKeyDestroyedError || err instanceof EnvelopeDecryptError) {
        this.log.warn(
          { wamid: row.wamid, db: db.label, err: err.message },
          'skipped unreadable queued message',
        );
        return null;
      }
      throw err;
    }
  }

  /** Removes acknowledged messages from the device's queue in every database; returns how many. */
  async ack(to: DeviceAddress, wamids: string[]): Promise<number> {
    const counts = await Promise.all(
      this.dbs
        .all()
        .map(async (db) =>
          affected(
            await db.ds.query(
              `DELETE FROM storage.pending WHERE wa_id = $1 AND device_id = $2 AND wamid = ANY($3)`,
              [to.wa_id, to.device_id, wamids],
            ),
          ),
        ),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  private async auditReads(reads: { db: StoreDb; wamid: string }[], actor: string, at: Date): Promise<void> {
    const byDb = new Map<StoreDb, string[]>();
    for (const r of reads) byDb.set(r.db, [...(byDb.get(r.db) ?? []), r.wamid]);
    await Promise.all(
      [...byDb].map(([db, wamids]) =>
        audit(db, {
          action: 'read',
          actor,
          purpose: 'retransmission',
          at,
          counts: { messages: wamids.length },
          wamids,
        }),
      ),
    );
  }
}
