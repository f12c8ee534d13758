import type { ServiceDefinition } from '@relay/platform';
import { AppModule, type AppOverrides } from './app.module';
import { BusinessForwardingConfigSchema } from './config';

/** business-forwarding as main.ts runs it and tests start it in-process (with their clock, say). */
export function businessForwardingService(
  overrides: AppOverrides = {},
): ServiceDefinition<typeof BusinessForwardingConfigSchema> {
  return {
    service: 'business-forwarding',
    configSchema: BusinessForwardingConfigSchema,
    module: (config) => AppModule.register(config, overrides),
    // Graph API clients may post form-encoded fields (cloud-api/graph-body.ts).
    formBodies: true,
  };
}
