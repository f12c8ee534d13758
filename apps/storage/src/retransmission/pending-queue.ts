import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataKeyDestroyedError, EnvelopeDecryptError } from '@relay/envelope-crypto';
import { APP_LOGGER, CLOCK, type Clock } from '@relay/platform';
import type { DeviceAddress, PendingItem } from '@relay/protocol';
import { auditMany, type AuditEntry } from '../audit/audit-log';
import { BatchWriter } from '../db/batch-writer';
import { StorageDatabases } from '../db/storage-databases';
import { retrying, rowsOf, type StoreDb } from '../db/store-db';
import { pendingAad } from './pending-writer';

/**
 * Base64 ciphertext per storage.pending reply: well inside NATS's 1 MiB message with the JSON around it.
 * A reply cut for size therefore still carries more than 256 KiB (an item is at most 512 KiB), which is
 * how the gateway tells a cut page from the end of the queue.
 */
export const MAX_REPLY_CIPHERTEXT_CHARS = 800 * 1024;

interface PendingRow {
  /** 1-based position of the request in its batch. */
  req: string;
  seq: string;
  wamid: string;
  phone_number_id: string;
  type: 'prekey' | 'whisper';
  created_at: Date;
  ciphertext_sealed: Buffer;
}

interface ListRequest {
  to: DeviceAddress;
  afterSeq: number;
  limit: number;
  actor: string;
}

interface AckRequest {
  to: DeviceAddress;
  wamids: string[];
}

/**
 * Requests answered by one statement per database. Gateways ask for many devices at once (one request
 * per device with news); a batch's rows are held in memory together, and each request's rows are
 * bounded by the reply size, so this bounds the memory of one batch too.
 */
const RPC_BATCH = 64;

/**
 * The retransmission queue's read side (answers gateway's storage.pending / storage.ack). A device's
 * messages may sit in several regional databases; they are merged by seq. Every read of stored content
 * is audited in the database it came from, before the reply leaves.
 *
 * Requests arriving together (many devices, several gateways) are answered together: one SELECT per
 * database for every device of the batch (a LATERAL join, each device with its own after_seq and limit),
 * one INSERT of the batch's audit rows (still one row per request, with its own actor and wamids), and
 * one DELETE per database for every ack of the batch.
 */
@Injectable()
export class PendingQueue {
  private readonly lists: BatchWriter<ListRequest, PendingItem[]>;
  private readonly acks: BatchWriter<AckRequest, number>;

  constructor(
    @Inject(StorageDatabases) private readonly dbs: StorageDatabases,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly log: Logger,
  ) {
    this.lists = new BatchWriter((reqs) => this.listBatch(reqs), { maxBatch: RPC_BATCH, maxConcurrent: 2 });
    this.acks = new BatchWriter((reqs) => this.ackBatch(reqs), { maxBatch: RPC_BATCH * 4, maxConcurrent: 2 });
  }

  list(to: DeviceAddress, afterSeq: number, limit: number, actor: string): Promise<PendingItem[]> {
    return this.lists.add({ to, afterSeq, limit, actor });
  }

  /** Removes acknowledged messages from the device's queue in every database; returns how many. */
  ack(to: DeviceAddress, wamids: string[]): Promise<number> {
    return this.acks.add({ to, wamids });
  }

  private async listBatch(reqs: ListRequest[]): Promise<(PendingItem[] | Error)[]> {
    const now = this.clock.now();
    const perReq: { db: StoreDb; row: PendingRow }[][] = reqs.map(() => []);
    await Promise.all(
      this.dbs.all().map(async (db) => {
        // Rows starting beyond the reply budget can never be served: not fetched (sealed bytes count
        // less than their base64, so this cut is never tighter than the one below).
        const rows = (await db.ds.query(
          `SELECT d.req, p.seq, p.wamid, p.phone_number_id, p.type, p.created_at, p.ciphertext_sealed
           FROM unnest($1::text[], $2::smallint[], $3::bigint[], $4::int[]) WITH ORDINALITY AS d(w, dev, after_seq, lim, req)
           CROSS JOIN LATERAL (
             SELECT * FROM (
               SELECT q.*, sum(octet_length(q.ciphertext_sealed)) OVER (ORDER BY q.seq) - octet_length(q.ciphertext_sealed) AS before
               FROM (
                 SELECT seq, wamid, phone_number_id, type, created_at, ciphertext_sealed FROM storage.pending
                 WHERE wa_id = d.w AND device_id = d.dev AND seq > d.after_seq AND expires_at > $5
                 ORDER BY seq LIMIT d.lim
               ) q
             ) r WHERE r.before < $6
           ) p`,
          [
            reqs.map((r) => r.to.wa_id),
            reqs.map((r) => r.to.device_id),
            reqs.map((r) => r.afterSeq),
            reqs.map((r) => r.limit),
            now,
            MAX_REPLY_CIPHERTEXT_CHARS,
          ],
        )) as PendingRow[];
        for (const row of rows) perReq[Number(row.req) - 1].push({ db, row });
      }),
    );
    const audits = new Map<StoreDb, AuditEntry[]>();
    const out: (PendingItem[] | Error)[] = [];
    for (const [i, req] of reqs.entries()) {
      try {
        const { items, read } = await this.page(req, perReq[i]);
        out.push(items);
        for (const [db, wamids] of read) {
          const entries = audits.get(db) ?? [];
          entries.push({
            action: 'read',
            actor: req.actor,
            purpose: 'retransmission',
            at: now,
            counts: { messages: wamids.length },
            wamids,
          });
          audits.set(db, entries);
        }
      } catch (err) {
        out.push(err as Error);
      }
    }
    // Nothing is answered before its read is audited: a failed audit fails the batch.
    await Promise.all([...audits].map(([db, entries]) => auditMany(db, entries)));
    return out;
  }

  /** One request's reply: its rows from every database merged by seq, cut to one NATS message. */
  private async page(
    req: ListRequest,
    rows: { db: StoreDb; row: PendingRow }[],
  ): Promise<{ items: PendingItem[]; read: Map<StoreDb, string[]> }> {
    const merged = rows.sort((a, b) => (BigInt(a.row.seq) < BigInt(b.row.seq) ? -1 : 1)).slice(0, req.limit);
    const items: PendingItem[] = [];
    const read = new Map<StoreDb, string[]>();
    let bytes = 0;
    for (const { db, row } of merged) {
      const ct = await this.open(db, row, req.to);
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
      read.set(db, [...(read.get(db) ?? []), row.wamid]);
    }
    return { items, read };
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

  /**
   * One DELETE per database for the whole batch. Each removed row is counted for the first request of
   * the batch that named it (as if the requests had run one after the other).
   */
  private async ackBatch(reqs: AckRequest[]): Promise<number[]> {
    const keys = new Map<string, { w: string; dev: number; wamid: string }>();
    for (const r of reqs) {
      for (const wamid of r.wamids) {
        keys.set(ackKey(r.to.wa_id, r.to.device_id, wamid), { w: r.to.wa_id, dev: r.to.device_id, wamid });
      }
    }
    // Sorted, so concurrent batches meet rows in the same order; a deadlock is retried (acks are idempotent).
    const triples = [...keys.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, t]) => t);
    const removed = new Map<string, number>();
    await Promise.all(
      this.dbs.all().map(async (db) => {
        const rows = rowsOf<{ wa_id: string; device_id: number; wamid: string }>(
          await retrying(() =>
            db.ds.query(
              `DELETE FROM storage.pending p USING unnest($1::text[], $2::smallint[], $3::text[]) AS d(w, dev, wamid)
               WHERE p.wa_id = d.w AND p.device_id = d.dev AND p.wamid = d.wamid
               RETURNING p.wa_id, p.device_id, p.wamid`,
              [triples.map((t) => t.w), triples.map((t) => t.dev), triples.map((t) => t.wamid)],
            ),
          ),
        );
        for (const r of rows) {
          const k = ackKey(r.wa_id, r.device_id, r.wamid);
          removed.set(k, (removed.get(k) ?? 0) + 1);
        }
      }),
    );
    return reqs.map((r) => {
      let n = 0;
      for (const wamid of new Set(r.wamids)) {
        const k = ackKey(r.to.wa_id, r.to.device_id, wamid);
        n += removed.get(k) ?? 0;
        removed.delete(k);
      }
      return n;
    });
  }
}

const ackKey = (waId: string, deviceId: number, wamid: string) => `${waId}|${deviceId}|${wamid}`;
