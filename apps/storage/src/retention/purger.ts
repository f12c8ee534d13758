import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { APP_CONFIG, APP_LOGGER, CLOCK, type Clock } from '@relay/platform';
import { audit } from '../audit/audit-log';
import type { StorageConfig } from '../config';
import { StorageDatabases } from '../db/storage-databases';
import { affected, retrying, type StoreDb } from '../db/store-db';
import { DAY_MS } from '../time';
import { PendingExpiry } from './pending-expiry';
import { RetentionMetrics } from './retention.metrics';

export type PurgeCounts = Record<string, number>;

/**
 * Deletes what outlived its retention, in every database, in small batches: each batch is its own
 * transaction, so a crash loses at most one uncommitted batch and the next run (at start, then on the
 * schedule) simply continues. Deleting is idempotent; nothing is half-deleted.
 */
@Injectable()
export class Purger {
  private running: Promise<PurgeCounts> | null = null;

  constructor(
    @Inject(StorageDatabases) private readonly dbs: StorageDatabases,
    @Inject(PendingExpiry) private readonly pendingExpiry: PendingExpiry,
    @Inject(RetentionMetrics) private readonly metrics: RetentionMetrics,
    @Inject(APP_CONFIG) private readonly config: StorageConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly log: Logger,
  ) {}

  /** One purge over every database; concurrent callers share the run in progress. */
  runOnce(): Promise<PurgeCounts> {
    this.running ??= this.run().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async run(): Promise<PurgeCounts> {
    const total: PurgeCounts = {};
    for (const db of this.dbs.all()) {
      const counts = await this.purgeDb(db);
      for (const [k, v] of Object.entries(counts)) total[k] = (total[k] ?? 0) + v;
      if (Object.values(counts).some((v) => v > 0)) {
        await audit(db, {
          action: 'purge',
          actor: 'storage',
          purpose: 'retention',
          at: this.clock.now(),
          counts,
        });
        this.log.info({ db: db.label, counts }, 'purged expired data');
      }
    }
    return total;
  }

  private async purgeDb(db: StoreDb): Promise<PurgeCounts> {
    const now = this.clock.now();
    const dataCutoff = new Date(now.getTime() - this.config.RETENTION_DAYS * DAY_MS);
    const idCutoff = new Date(now.getTime() - this.config.USER_IDENTIFIER_RETENTION_DAYS * DAY_MS);
    const counts: PurgeCounts = {};
    // Pending first: an expired queued message must tell the business it failed before it disappears.
    counts.pending = await this.pendingExpiry.expire(db, now, dataCutoff);
    const expired = `expires_at <= $1 OR created_at <= $2`;
    counts.messages = await this.deleteBatched(db, 'messages', expired, [now, dataCutoff]);
    counts.message_statuses = await this.deleteBatched(
      db,
      'message_statuses',
      `expires_at <= $1 OR at <= $2`,
      [now, dataCutoff],
    );
    counts.contacts = await this.deleteBatched(db, 'contacts', `last_status_at <= $1`, [idCutoff]);
    // A counter may go once its device has nothing queued: the next seq restarts from the clock, above it.
    counts.device_counters = await this.deleteBatched(
      db,
      'device_counters',
      `updated_at <= $1 AND NOT EXISTS (SELECT 1 FROM storage.pending p WHERE p.wa_id = t.wa_id AND p.device_id = t.device_id)`,
      [idCutoff],
    );
    counts.status_marks = await this.deleteBatched(db, 'status_marks', `created_at <= $1`, [dataCutoff]);
    counts.processed_events = await this.deleteBatched(db, 'processed_events', `processed_at <= $1`, [
      dataCutoff,
    ]);
    for (const [table, n] of Object.entries(counts)) this.metrics.purged(db.label, table, n);
    return counts;
  }

  private async deleteBatched(db: StoreDb, table: string, where: string, params: unknown[]): Promise<number> {
    const limitParam = `$${params.length + 1}`;
    let total = 0;
    for (;;) {
      // Rows a writer holds right now (a contact being refreshed) are skipped, not waited for: the
      // purge never deadlocks with the writers and takes them on its next run if still expired.
      const n = affected(
        await retrying(() =>
          db.ds.query(
            `DELETE FROM storage.${table} WHERE ctid IN (SELECT ctid FROM storage.${table} t WHERE ${where} LIMIT ${limitParam} FOR UPDATE SKIP LOCKED)`,
            [...params, this.config.PURGE_BATCH_SIZE],
          ),
        ),
      );
      total += n;
      if (n < this.config.PURGE_BATCH_SIZE) return total;
    }
  }
}
