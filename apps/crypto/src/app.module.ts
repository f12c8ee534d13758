import { Module, type DynamicModule } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { APP_LOGGER, CLOCK, DatabaseModule, NatsBus, NatsModule, type Clock } from '@relay/platform';
import type { CryptoConfig } from './config';
import { cryptoDataSource } from './data-source';
import { CryptoServices } from './services';
import { CryptoRuntime } from './crypto.runtime';
import { SignalWorkerPool } from './signal/worker-pool';

@Module({})
export class AppModule {
  static register(config: CryptoConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        NatsModule.forService('crypto'),
        DatabaseModule.forDataSource(() => cryptoDataSource(config.DATABASE_URL, config.DATABASE_POOL_SIZE)),
      ],
      providers: [
        {
          provide: CryptoServices,
          inject: [DataSource, NatsBus, CLOCK, APP_LOGGER],
          useFactory: (ds: DataSource, bus: NatsBus, clock: Clock, log: Logger) =>
            new CryptoServices(ds, bus, new SignalWorkerPool(config.CRYPTO_WORKERS), config, clock, log),
        },
        CryptoRuntime,
      ],
      exports: [CryptoServices],
    };
  }
}
