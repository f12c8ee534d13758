import 'reflect-metadata';
import { runService } from '@relay/platform';
import { AppModule } from './app.module';
import { StorageConfigSchema } from './config';

runService({
  service: 'storage',
  configSchema: StorageConfigSchema,
  module: (config) => AppModule.register(config),
});
