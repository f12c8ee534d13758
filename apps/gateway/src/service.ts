import type { ServiceDefinition } from '@relay/platform';
import { AppModule } from './app.module';
import { GatewayConfigSchema } from './config';

/** The gateway as main.ts runs it and tests start it in-process. */
export const gatewayService: ServiceDefinition<typeof GatewayConfigSchema> = {
  service: 'gateway',
  configSchema: GatewayConfigSchema,
  module: (config) => AppModule.register(config),
  // 100 Kyber prekeys (1569 B each, base64) plus signatures fit well under this.
  bodyLimit: '512kb',
};
