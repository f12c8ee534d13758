import { createServiceDataSource, migrate } from '@relay/platform';
import { ProcessedEvent } from './processed-event.entity';
import { Init1764064000000 } from './migrations/1764064000000-init';
import { MessageStore1764300000000 } from './migrations/1764300000000-message-store';
import { DeliveryCursor1764400000000 } from './migrations/1764400000000-delivery-cursor';
import { parseRegionUrls } from './config';

export const STORAGE_SCHEMA = 'storage';

/** The service's DataSource, shared by Nest and the migration CLI. */
export function storageDataSource(url = process.env.DATABASE_URL ?? '', poolSize = 10) {
  return createServiceDataSource({
    url,
    schema: STORAGE_SCHEMA,
    entities: [ProcessedEvent],
    migrations: [Init1764064000000, MessageStore1764300000000, DeliveryCursor1764400000000],
    poolSize,
    applicationName: 'storage',
  });
}

/**
 * Migrates every Local Storage database (STORAGE_REGION_DATABASE_URLS); tools/migrate.mjs calls this after
 * migrating the default database. A region's URL is never logged (it carries a password).
 */
export async function migrateExtra(
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = () => undefined,
): Promise<void> {
  for (const [region, url] of parseRegionUrls(env.STORAGE_REGION_DATABASE_URLS ?? '')) {
    const ds = storageDataSource(url, 2);
    try {
      const applied = await migrate(ds);
      log(`storage region ${region}: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}`);
    } finally {
      if (ds.isInitialized) await ds.destroy();
    }
  }
}

export default storageDataSource();
