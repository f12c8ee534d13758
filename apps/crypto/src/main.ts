import 'reflect-metadata';
import { runService } from '@relay/platform';
import { AppModule } from './app.module';
import { CryptoConfigSchema } from './config';

runService({
  service: 'crypto',
  configSchema: CryptoConfigSchema,
  module: (config) => AppModule.register(config),
});
