import { createServiceDataSource } from '@relay/platform';
import { ProcessedEvent } from './processed-event.entity';
import { Init1764064000000 } from './migrations/1764064000000-init';
import { Forwarding1764300000000 } from './migrations/1764300000000-forwarding';
import { WebhookBatching1764400000000 } from './migrations/1764400000000-webhook-batching';

export const BUSINESSFORWARDING_SCHEMA = 'business_forwarding';

/** The service's DataSource, shared by Nest and the migration CLI. */
export function businessForwardingDataSource(url = process.env.DATABASE_URL ?? '', poolSize = 10) {
  return createServiceDataSource({
    url,
    schema: BUSINESSFORWARDING_SCHEMA,
    entities: [ProcessedEvent],
    migrations: [Init1764064000000, Forwarding1764300000000, WebhookBatching1764400000000],
    poolSize,
    applicationName: 'business-forwarding',
  });
}

export default businessForwardingDataSource();
