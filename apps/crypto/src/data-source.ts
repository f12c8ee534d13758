import { createServiceDataSource } from '@relay/platform';
import { ProcessedEvent } from './processed-event.entity';
import { Init1764064000000 } from './migrations/1764064000000-init';
import { SignalStore1764100000000 } from './migrations/1764100000000-signal-store';
import { SessionCursor1764200000000 } from './migrations/1764200000000-session-cursor';
import { OutboxPublished1764300000000 } from './migrations/1764300000000-outbox-published';

export const CRYPTO_SCHEMA = 'crypto';

/** The service's DataSource, shared by Nest and the migration CLI. */
export function cryptoDataSource(url = process.env.DATABASE_URL ?? '', poolSize = 10) {
  return createServiceDataSource({
    url,
    schema: CRYPTO_SCHEMA,
    entities: [ProcessedEvent],
    migrations: [
      Init1764064000000,
      SignalStore1764100000000,
      SessionCursor1764200000000,
      OutboxPublished1764300000000,
    ],
    poolSize,
    applicationName: 'crypto',
  });
}

export default cryptoDataSource();
