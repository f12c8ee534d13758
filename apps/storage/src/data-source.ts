import { createServiceDataSource } from '@relay/platform';
import { ProcessedEvent } from './processed-event.entity';
import { Init1764064000000 } from './migrations/1764064000000-init';

export const STORAGE_SCHEMA = 'storage';

/** The service's DataSource, shared by Nest and the migration CLI. */
export function storageDataSource(url = process.env.DATABASE_URL ?? '', poolSize = 10) {
  return createServiceDataSource({
    url,
    schema: STORAGE_SCHEMA,
    entities: [ProcessedEvent],
    migrations: [Init1764064000000],
    poolSize,
    applicationName: 'storage',
  });
}

export default storageDataSource();
