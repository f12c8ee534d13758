import { Module, type DynamicModule } from '@nestjs/common';
import { DatabaseModule, NatsModule } from '@relay/platform';
import type { CryptoConfig } from './config';
import { cryptoDataSource } from './data-source';

@Module({})
export class AppModule {
  static register(config: CryptoConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        NatsModule.forService('crypto'),
        DatabaseModule.forDataSource(() => cryptoDataSource(config.DATABASE_URL, config.DATABASE_POOL_SIZE)),
      ],
    };
  }
}
