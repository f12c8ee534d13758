import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG } from '@relay/platform';
import type { StorageConfig } from '../config';
import { RegionNotConfiguredError } from '../errors';
import { StorageDatabases } from '../db/storage-databases';
import type { StoreDb } from '../db/store-db';

export interface NumberRoute {
  phoneNumberId: string;
  region: string | null;
  retentionDays: number;
  registered: boolean;
}

export interface RoutedGroup<T> {
  db: StoreDb;
  entries: { item: T; index: number; retentionDays: number }[];
}

/**
 * Where a number's data lives. The routing rows are in the default database and read per batch (one
 * query), so every replica sees a region change at once. Numbers storage never heard of use the default
 * database and the global retention.
 */
@Injectable()
export class NumberDirectory {
  constructor(
    @Inject(StorageDatabases) private readonly dbs: StorageDatabases,
    @Inject(APP_CONFIG) private readonly config: StorageConfig,
  ) {}

  async routes(phoneNumberIds: string[]): Promise<Map<string, NumberRoute>> {
    const ids = [...new Set(phoneNumberIds)];
    const rows = (await this.dbs.defaultDb.ds.query(
      `SELECT phone_number_id, region, retention_days, registered FROM storage.numbers WHERE phone_number_id = ANY($1)`,
      [ids],
    )) as { phone_number_id: string; region: string | null; retention_days: number; registered: boolean }[];
    return new Map(
      rows.map((r) => [
        r.phone_number_id,
        {
          phoneNumberId: r.phone_number_id,
          region: r.region,
          retentionDays: r.retention_days,
          registered: r.registered,
        },
      ]),
    );
  }

  /** The database of a number; throws when its region is not configured (never falls back). */
  dbFor(route: NumberRoute | undefined): StoreDb {
    if (!route?.region) return this.dbs.defaultDb;
    const db = this.dbs.region(route.region);
    if (!db) throw new RegionNotConfiguredError(route.region);
    return db;
  }

  /** Retention of a number's message data: its own setting, never above the service's limit. */
  retentionDays(route: NumberRoute | undefined): number {
    return Math.min(this.config.RETENTION_DAYS, route?.retentionDays ?? this.config.RETENTION_DAYS);
  }

  /** Splits a batch by target database; items of an unavailable region get their error. */
  async group<T>(
    items: T[],
    numberOf: (item: T) => string,
  ): Promise<{ groups: RoutedGroup<T>[]; outcome: (Error | undefined)[] }> {
    const routes = await this.routes(items.map(numberOf));
    const outcome: (Error | undefined)[] = items.map(() => undefined);
    const groups = new Map<StoreDb, RoutedGroup<T>>();
    items.forEach((item, index) => {
      const route = routes.get(numberOf(item));
      try {
        const db = this.dbFor(route);
        const g = groups.get(db) ?? { db, entries: [] };
        g.entries.push({ item, index, retentionDays: this.retentionDays(route) });
        groups.set(db, g);
      } catch (err) {
        outcome[index] = err as Error;
      }
    });
    return { groups: [...groups.values()], outcome };
  }
}

/** Runs one write per database group in parallel; a failing group fails only its own items. */
export async function writeGroups<T>(
  grouped: { groups: RoutedGroup<T>[]; outcome: (Error | undefined)[] },
  write: (group: RoutedGroup<T>) => Promise<void>,
): Promise<(Error | undefined)[]> {
  const { groups, outcome } = grouped;
  await Promise.all(
    groups.map(async (g) => {
      try {
        await write(g);
      } catch (err) {
        for (const e of g.entries) outcome[e.index] = err as Error;
      }
    }),
  );
  return outcome;
}
