import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { Client } from 'pg';
import type { Logger } from 'pino';
import { APP_CONFIG, APP_LOGGER } from '@relay/platform';
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

/** Postgres channel on which every change of storage.numbers is announced (payload: phone_number_id). */
export const NUMBERS_CHANNEL = 'storage_numbers';
const LISTEN_RETRY_MS = 1_000;
/** Unknown numbers are cached too; far more than any deployment's numbers, so only junk is dropped. */
const MAX_CACHED = 10_000;

/**
 * Where a number's data lives. The routing rows are in the default database. Write batches reuse a
 * number's route for NUMBER_ROUTE_CACHE_MS instead of reading it every batch, and only while this replica
 * listens to NUMBERS_CHANNEL: the registry announces every change of a number (NOTIFY, delivered at
 * commit) and every replica drops that number's route when it arrives, so a change reaches all replicas
 * within milliseconds, much as when every batch read the table (a batch that read just before a commit
 * wrote with the old route then too). Without the channel (connection lost) nothing is cached and every
 * batch reads the table again; the TTL only bounds a notification lost without the connection noticing. Numbers storage never heard of use the default database and the global
 * retention.
 */
@Injectable()
export class NumberDirectory implements OnModuleInit, OnModuleDestroy {
  private readonly cache = new Map<string, { route: NumberRoute | undefined; until: number }>();
  /** Bumped by every invalidation: a lookup that raced one does not cache what it read. */
  private epoch = 0;
  private listener: Client | null = null;
  private closed = false;
  private retryTimer?: NodeJS.Timeout;

  constructor(
    @Inject(StorageDatabases) private readonly dbs: StorageDatabases,
    @Inject(APP_CONFIG) private readonly config: StorageConfig,
    @Inject(APP_LOGGER) private readonly log: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    if (this.config.NUMBER_ROUTE_CACHE_MS > 0) await this.listen();
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const l = this.listener;
    this.listener = null;
    await l?.end().catch(() => undefined);
  }

  /** Drops a number's cached route (its registration changed). */
  forget(phoneNumberId: string): void {
    this.cache.delete(phoneNumberId);
    this.epoch++;
  }

  async routes(phoneNumberIds: string[]): Promise<Map<string, NumberRoute>> {
    const out = new Map<string, NumberRoute>();
    const missing: string[] = [];
    const now = performance.now();
    for (const id of new Set(phoneNumberIds)) {
      const hit = this.caching() ? this.cache.get(id) : undefined;
      if (hit && hit.until > now) {
        if (hit.route) out.set(id, hit.route);
      } else {
        missing.push(id);
      }
    }
    if (missing.length === 0) return out;
    const epoch = this.epoch;
    const rows = (await this.dbs.defaultDb.ds.query(
      `SELECT phone_number_id, region, retention_days, registered FROM storage.numbers WHERE phone_number_id = ANY($1)`,
      [missing],
    )) as { phone_number_id: string; region: string | null; retention_days: number; registered: boolean }[];
    for (const r of rows) {
      out.set(r.phone_number_id, {
        phoneNumberId: r.phone_number_id,
        region: r.region,
        retentionDays: r.retention_days,
        registered: r.registered,
      });
    }
    if (this.caching() && epoch === this.epoch) {
      if (this.cache.size + missing.length > MAX_CACHED) this.cache.clear();
      for (const id of missing)
        this.cache.set(id, { route: out.get(id), until: now + this.config.NUMBER_ROUTE_CACHE_MS });
    }
    return out;
  }

  private caching(): boolean {
    return this.listener !== null && this.config.NUMBER_ROUTE_CACHE_MS > 0;
  }

  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new Client({
      connectionString: this.config.DATABASE_URL,
      application_name: 'storage-numbers-listener',
    });
    client.on('notification', (n) => {
      if (n.payload) this.forget(n.payload);
      else this.forgetAll();
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${NUMBERS_CHANNEL}`);
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message },
        'number change listener not connected; routes are not cached',
      );
      await client.end().catch(() => undefined);
      this.retryLater();
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    // Whatever was read before the channel was up may have missed a change.
    this.forgetAll();
    this.listener = client;
  }

  private lost(client: Client, err?: Error): void {
    if (this.listener !== client) return;
    this.listener = null;
    this.forgetAll();
    if (this.closed) return;
    this.log.warn(
      { err: err?.message },
      'number change listener lost; routes are not cached until it is back',
    );
    void client.end().catch(() => undefined);
    this.retryLater();
  }

  private retryLater(): void {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.listen(), LISTEN_RETRY_MS);
    this.retryTimer.unref();
  }

  private forgetAll(): void {
    this.cache.clear();
    this.epoch++;
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
