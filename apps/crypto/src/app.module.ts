import { Module, type DynamicModule } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import {
  APP_LOGGER,
  CLOCK,
  DatabaseModule,
  METRICS_REGISTRY,
  NatsBus,
  NatsModule,
  type Clock,
} from '@relay/platform';
import type { Registry } from 'prom-client';
import { CryptoMetrics } from './common/metrics';
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
          inject: [DataSource, NatsBus, CLOCK, APP_LOGGER, METRICS_REGISTRY],
          useFactory: (ds: DataSource, bus: NatsBus, clock: Clock, log: Logger, registry: Registry) =>
            new CryptoServices(
              ds,
              bus,
              new SignalWorkerPool(config.CRYPTO_WORKERS),
              config,
              clock,
              log,
              new CryptoMetrics(registry),
            ),
        },
        CryptoRuntime,
      ],
      exports: [CryptoServices],
    };
  }
}
