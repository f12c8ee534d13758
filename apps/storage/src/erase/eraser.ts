import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { APP_CONFIG, APP_LOGGER, CLOCK, NatsBus, type Clock } from '@relay/platform';
import type { EraseRequest } from '@relay/protocol';
import { audit } from '../audit/audit-log';
import type { StorageConfig } from '../config';
import { StorageDatabases } from '../db/storage-databases';
import { affected, retrying, type StoreDb } from '../db/store-db';

const USER_TABLES = ['messages', 'message_statuses', 'pending', 'contacts'] as const;

/**
 * Erasure on the business's order, in every database (a number may have moved between regions, so its
 * data can be in more than one). Scope user: that user's rows for the listed numbers. Scope business:
 * every row of the listed numbers, then their data keys (crypto-shredding: a copy anywhere, such as a
 * backup, becomes unreadable). Idempotent: running it again deletes nothing more and reports again.
 */
@Injectable()
export class Eraser {
  constructor(
    @Inject(StorageDatabases) private readonly dbs: StorageDatabases,
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(APP_CONFIG) private readonly config: StorageConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly log: Logger,
  ) {}

  async erase(req: EraseRequest): Promise<void> {
    const total: Record<string, number> = {};
    for (const db of this.dbs.all()) {
      const counts = req.scope === 'user' ? await this.eraseUser(db, req) : await this.eraseBusiness(db, req);
      for (const [k, v] of Object.entries(counts)) total[k] = (total[k] ?? 0) + v;
      await audit(db, {
        action: 'erase',
        actor: `waba:${req.waba_id}`,
        purpose: `erase_${req.scope}`,
        at: this.clock.now(),
        requestId: req.request_id,
        counts,
      });
    }
    this.log.info({ request_id: req.request_id, scope: req.scope, counts: total }, 'erasure completed');
    await this.bus.publish(
      'business.erase_completed',
      { service: 'storage' },
      { request_id: req.request_id, service: 'storage', counts: total, at: this.clock.now().toISOString() },
      { msgId: `erase_completed.storage.${req.request_id}` },
    );
  }

  private async eraseUser(db: StoreDb, req: EraseRequest): Promise<Record<string, number>> {
    const waId = req.wa_id ?? '';
    const numbers = req.phone_number_ids;
    const counts: Record<string, number> = {};
    counts.status_marks = await exec(
      db,
      `DELETE FROM storage.status_marks s USING storage.messages m
       WHERE s.wamid = m.wamid AND m.phone_number_id = ANY($1) AND m.wa_id = $2`,
      [numbers, waId],
    );
    for (const table of USER_TABLES) {
      counts[table] = await this.deleteBatched(db, table, `phone_number_id = ANY($1) AND wa_id = $2`, [
        numbers,
        waId,
      ]);
    }
    // The per-device counters name the user too; they go once no queued message is left.
    counts.device_counters = await exec(
      db,
      `DELETE FROM storage.device_counters c WHERE c.wa_id = $1
       AND NOT EXISTS (SELECT 1 FROM storage.pending p WHERE p.wa_id = c.wa_id AND p.device_id = c.device_id)`,
      [waId],
    );
    return counts;
  }

  private async eraseBusiness(db: StoreDb, req: EraseRequest): Promise<Record<string, number>> {
    const numbers = req.phone_number_ids;
    const counts: Record<string, number> = {};
    counts.status_marks = await exec(
      db,
      `DELETE FROM storage.status_marks s USING storage.messages m WHERE s.wamid = m.wamid AND m.phone_number_id = ANY($1)`,
      [numbers],
    );
    for (const table of USER_TABLES) {
      counts[table] = await this.deleteBatched(db, table, `phone_number_id = ANY($1)`, [numbers]);
    }
    counts.data_keys = 0;
    for (const n of numbers) if (await db.keys.destroy(n)) counts.data_keys++;
    return counts;
  }

  private async deleteBatched(db: StoreDb, table: string, where: string, params: unknown[]): Promise<number> {
    let total = 0;
    const limit = this.config.PURGE_BATCH_SIZE;
    for (;;) {
      const n = await exec(
        db,
        `DELETE FROM storage.${table} WHERE ctid IN (SELECT ctid FROM storage.${table} WHERE ${where} LIMIT ${limit})`,
        params,
      );
      total += n;
      if (n < limit) return total;
    }
  }
}

/** One statement; a deadlock with a concurrent writer is retried, never left half-done. */
async function exec(db: StoreDb, sql: string, params: unknown[]): Promise<number> {
  return affected(await retrying(() => db.ds.query(sql, params)));
}
