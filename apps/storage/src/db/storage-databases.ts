import { DataKeyStore, KeyRing, LocalKeyProvider, type KeyProvider } from '@relay/envelope-crypto';
import type { DataSource } from 'typeorm';
import { initializeDataSource } from '@relay/platform';
import { storageDataSource, STORAGE_SCHEMA } from '../data-source';
import type { StorageConfig } from '../config';
import type { StoreDb } from './store-db';

/** How long an unwrapped data key stays in memory: bounds how long a destroyed key stays usable. */
const KEY_CACHE_TTL_MS = 30_000;

/**
 * The default database plus one per configured Local Storage region, each with its own key ring (a
 * regional number's data keys stay in its region too).
 */
export class StorageDatabases {
  private constructor(
    readonly defaultDb: StoreDb,
    private readonly regions: Map<string, StoreDb>,
  ) {}

  static async open(config: StorageConfig, defaultDs: DataSource): Promise<StorageDatabases> {
    const provider = new LocalKeyProvider(config.MASTER_KEY, config.MASTER_KEY_PREVIOUS);
    const make = (region: string | null, ds: DataSource): StoreDb => ({
      region,
      label: region ?? 'default',
      ds,
      keys: keyRing(ds, provider),
    });
    const regions = new Map<string, StoreDb>();
    try {
      for (const [region, url] of config.STORAGE_REGION_DATABASE_URLS) {
        const ds = await initializeDataSource(
          storageDataSource(url, config.DATABASE_POOL_SIZE),
          `STORAGE_REGION_DATABASE_URLS (${region})`,
        );
        regions.set(region, make(region, ds));
      }
    } catch (err) {
      for (const db of regions.values()) await db.ds.destroy();
      throw err;
    }
    return new StorageDatabases(make(null, defaultDs), regions);
  }

  /** Every database, default first. */
  all(): StoreDb[] {
    return [this.defaultDb, ...this.regions.values()];
  }

  region(code: string): StoreDb | undefined {
    return this.regions.get(code);
  }

  /** Closes the regional pools (the default DataSource belongs to DatabaseModule). */
  async close(): Promise<void> {
    for (const db of this.regions.values()) if (db.ds.isInitialized) await db.ds.destroy();
  }
}

function keyRing(ds: DataSource, provider: KeyProvider): KeyRing {
  return new KeyRing(new DataKeyStore(ds, STORAGE_SCHEMA), provider, { cacheTtlMs: KEY_CACHE_TTL_MS });
}
