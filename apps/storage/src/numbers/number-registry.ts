import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { APP_CONFIG, APP_LOGGER, CLOCK, type Clock } from '@relay/platform';
import type { NumberDeregistered, NumberRegistered } from '@relay/protocol';
import { audit } from '../audit/audit-log';
import type { StorageConfig } from '../config';
import { StorageDatabases } from '../db/storage-databases';
import { inTx, type Tx } from '../db/store-db';
import { StorageError } from '../errors';
import { DAY_MS } from '../time';
import { NUMBERS_CHANNEL, NumberDirectory } from './number-directory';

interface NumberRow {
  region: string | null;
  retention_days: number;
  registered: boolean;
  registered_at: Date;
  deregistered_at: Date | null;
}

/** A conflicting registration is retried while a deregistration may still be on its way. */
export class RegistrationConflictPending extends StorageError {
  override readonly name = 'RegistrationConflictPending';
}

/**
 * Applies number lifecycle events to the routing table (default database). Cloud API's rule for Local
 * Storage: a registered number changes region only by deregistering and registering again; a
 * registration naming another region while registered is refused with a logged, audited reason.
 */
@Injectable()
export class NumberRegistry {
  constructor(
    @Inject(StorageDatabases) private readonly dbs: StorageDatabases,
    @Inject(APP_CONFIG) private readonly config: StorageConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly log: Logger,
    @Inject(NumberDirectory) private readonly directory: NumberDirectory,
  ) {}

  async registered(e: NumberRegistered): Promise<void> {
    const region = e.data_localization_region ?? null;
    const at = new Date(e.at);
    if (region && !this.dbs.region(region)) {
      this.log.error(
        { phone_number_id: e.phone_number_id, region },
        'number registered in a Local Storage region without a configured database; its messages wait until one is configured',
      );
    }
    await inTx(this.dbs.defaultDb, async (tx) => {
      const row = await this.lock(tx, e.phone_number_id);
      if (row && at.getTime() < Math.max(row.registered_at.getTime(), row.deregistered_at?.getTime() ?? 0)) {
        this.log.info({ phone_number_id: e.phone_number_id }, 'ignored stale registration event');
        return null;
      }
      if (row?.registered && row.region !== region) {
        await this.refuseRegionChange(tx, e, row, region);
        return null;
      }
      await tx.query(
        `INSERT INTO storage.numbers (phone_number_id, waba_id, region, retention_days, registered, registered_at)
         VALUES ($1, $2, $3, $4, true, $5)
         ON CONFLICT (phone_number_id) DO UPDATE SET waba_id = $2, region = $3, retention_days = $4, registered = true, registered_at = $5`,
        [e.phone_number_id, e.waba_id, region, e.retention_days, at],
      );
      // Before the new retention becomes visible (commit), so whoever sees it also sees the data it
      // shortened; in the same transaction when the number's data is in the default database.
      if (row && row.region === region && e.retention_days < row.retention_days) {
        await this.applyShorterRetention(e.phone_number_id, region, e.retention_days, tx);
      }
      // Delivered at commit to every replica, which drops its cached route of the number.
      await tx.query(`SELECT pg_notify($1, $2)`, [NUMBERS_CHANNEL, e.phone_number_id]);
    });
    // Not waiting for our own notification: this replica's next batch already uses the new route.
    this.directory.forget(e.phone_number_id);
  }

  async deregistered(e: NumberDeregistered): Promise<void> {
    const at = new Date(e.at);
    await this.dbs.defaultDb.ds.query(
      `WITH changed AS (
         UPDATE storage.numbers SET registered = false, deregistered_at = $2
         WHERE phone_number_id = $1 AND registered_at <= $2 AND (deregistered_at IS NULL OR deregistered_at < $2)
         RETURNING phone_number_id)
       SELECT pg_notify($3, phone_number_id) FROM changed`,
      [e.phone_number_id, at, NUMBERS_CHANNEL],
    );
    this.directory.forget(e.phone_number_id);
  }

  private async lock(tx: Tx, phoneNumberId: string): Promise<NumberRow | undefined> {
    const rows = (await tx.query(
      `SELECT region, retention_days, registered, registered_at, deregistered_at FROM storage.numbers WHERE phone_number_id = $1 FOR UPDATE`,
      [phoneNumberId],
    )) as NumberRow[];
    return rows[0];
  }

  private async refuseRegionChange(
    tx: Tx,
    e: NumberRegistered,
    row: NumberRow,
    region: string | null,
  ): Promise<void> {
    if (this.clock.now().getTime() - Date.parse(e.at) < this.config.REGION_CHANGE_GRACE_MS) {
      throw new RegistrationConflictPending(
        `number ${e.phone_number_id} is registered in ${row.region ?? 'default'}; waiting for a deregistration`,
      );
    }
    const reason = `number is registered with data_localization_region ${row.region ?? '(none)'}; deregister it before registering with ${region ?? '(none)'}`;
    this.log.warn({ phone_number_id: e.phone_number_id, reason }, 'refused region change');
    await audit(tx, {
      action: 'region_change_refused',
      actor: `waba:${e.waba_id}`,
      purpose: reason,
      at: this.clock.now(),
      phoneNumberId: e.phone_number_id,
    });
  }

  /** A shorter retention applies to data already stored, not only to what comes next. */
  private async applyShorterRetention(phoneNumberId: string, region: string | null, days: number, tx: Tx) {
    const q = region ? this.dbs.region(region)?.ds : tx;
    if (!q) return;
    const interval = days * DAY_MS;
    for (const table of ['messages', 'pending']) {
      await q.query(
        `UPDATE storage.${table} SET expires_at = created_at + ($2 || ' milliseconds')::interval
         WHERE phone_number_id = $1 AND expires_at > created_at + ($2 || ' milliseconds')::interval`,
        [phoneNumberId, String(interval)],
      );
    }
    await q.query(
      `UPDATE storage.message_statuses SET expires_at = at + ($2 || ' milliseconds')::interval
       WHERE phone_number_id = $1 AND expires_at > at + ($2 || ' milliseconds')::interval`,
      [phoneNumberId, String(interval)],
    );
  }
}
