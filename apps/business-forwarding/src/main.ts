import 'reflect-metadata';
import { runService } from '@relay/platform';
import { AppModule } from './app.module';
import { BusinessForwardingConfigSchema } from './config';

runService({
  service: 'business-forwarding',
  configSchema: BusinessForwardingConfigSchema,
  module: (config) => AppModule.register(config),
});
