import { Module, type DynamicModule } from '@nestjs/common';
import { DatabaseModule, NatsModule } from '@relay/platform';
import type { StorageConfig } from './config';
import { storageDataSource } from './data-source';

@Module({})
export class AppModule {
  static register(config: StorageConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        NatsModule.forService('storage'),
        DatabaseModule.forDataSource(() => storageDataSource(config.DATABASE_URL, config.DATABASE_POOL_SIZE)),
      ],
    };
  }
}
