import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, METRICS_REGISTRY, type Clock } from '@relay/platform';
import { Counter, Gauge, type Registry } from 'prom-client';
import { StorageDatabases } from '../db/storage-databases';

/**
 * What retention did and how far behind it is: rows purged per table and database, and the age of the
 * oldest stored message (computed from the databases at scrape time, so it is never stale; it should stay
 * below the retention limit plus the purge interval).
 */
@Injectable()
export class RetentionMetrics {
  private readonly purgedTotal: Counter<'db' | 'table'>;
  readonly oldestAge: Gauge<'db'>;

  constructor(
    @Inject(METRICS_REGISTRY) registry: Registry,
    @Inject(StorageDatabases) private readonly dbs: StorageDatabases,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    this.purgedTotal = new Counter({
      name: 'relay_storage_purged_rows_total',
      help: 'Rows deleted by retention, by database (default or region) and table',
      labelNames: ['db', 'table'],
      registers: [registry],
    });
    const oldestAges = () => this.oldestAges();
    this.oldestAge = new Gauge({
      name: 'relay_storage_oldest_message_age_seconds',
      help: 'Age of the oldest stored message (0 when none), by database',
      labelNames: ['db'],
      registers: [registry],
      async collect() {
        for (const [db, age] of await oldestAges()) this.set({ db }, age);
      },
    });
  }

  purged(db: string, table: string, n: number): void {
    if (n > 0) this.purgedTotal.inc({ db, table }, n);
  }

  /** Seconds since the oldest message in each database was created (pending queue included). */
  async oldestAges(): Promise<Map<string, number>> {
    const now = this.clock.now().getTime();
    const out = new Map<string, number>();
    for (const db of this.dbs.all()) {
      const rows = (await db.ds.query(
        `SELECT LEAST((SELECT min(created_at) FROM storage.messages), (SELECT min(created_at) FROM storage.pending)) AS oldest`,
      )) as { oldest: Date | null }[];
      const oldest = rows[0]?.oldest;
      out.set(db.label, oldest ? Math.max(0, (now - oldest.getTime()) / 1000) : 0);
    }
    return out;
  }
}
