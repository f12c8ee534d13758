import { Module, type DynamicModule } from '@nestjs/common';
import { DatabaseModule, NatsModule } from '@relay/platform';
import type { GatewayConfig } from './config';
import { gatewayDataSource } from './data-source';

@Module({})
export class AppModule {
  static register(config: GatewayConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        NatsModule.forService('gateway'),
        DatabaseModule.forDataSource(() => gatewayDataSource(config.DATABASE_URL, config.DATABASE_POOL_SIZE)),
      ],
    };
  }
}
