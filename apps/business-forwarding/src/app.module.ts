import { Module, type DynamicModule } from '@nestjs/common';
import { DatabaseModule, NatsModule } from '@relay/platform';
import type { BusinessForwardingConfig } from './config';
import { businessForwardingDataSource } from './data-source';

@Module({})
export class AppModule {
  static register(config: BusinessForwardingConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        NatsModule.forService('business-forwarding'),
        DatabaseModule.forDataSource(() =>
          businessForwardingDataSource(config.DATABASE_URL, config.DATABASE_POOL_SIZE),
        ),
      ],
    };
  }
}
