import 'reflect-metadata';
import { runService } from '@relay/platform';
import { AppModule } from './app.module';
import { GatewayConfigSchema } from './config';

runService({
  service: 'gateway',
  configSchema: GatewayConfigSchema,
  module: (config) => AppModule.register(config),
});
