import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  APP_CONFIG,
  CLOCK,
  DatabaseModule,
  NatsModule,
  READINESS,
  type Clock,
  type ReadinessRegistry,
} from '@relay/platform';
import type { StorageConfig } from './config';
import { storageDataSource } from './data-source';
import { StorageDatabases } from './db/storage-databases';
import { KeyRotation } from './db/key-rotation';
import { NumberDirectory } from './numbers/number-directory';
import { NumberRegistry } from './numbers/number-registry';
import { MessageWriter } from './messages/message-writer';
import { StatusWriter } from './messages/status-writer';
import { PendingWriter } from './retransmission/pending-writer';
import { PendingQueue } from './retransmission/pending-queue';
import { PendingExpiry } from './retention/pending-expiry';
import { Purger } from './retention/purger';
import { PurgeScheduler } from './retention/purge.scheduler';
import { RetentionMetrics } from './retention/retention.metrics';
import { Eraser } from './erase/eraser';
import { StorageConsumers } from './consumers/storage-consumers';

@Injectable()
class DatabasesLifecycle implements OnApplicationShutdown {
  constructor(@Inject(StorageDatabases) private readonly dbs: StorageDatabases) {}
  async onApplicationShutdown(): Promise<void> {
    await this.dbs.close();
  }
}

export interface StorageModuleOptions {
  /** Tests move time with a FakeClock; production uses the platform's system clock. */
  clock?: Clock;
}

@Module({})
export class AppModule {
  static register(config: StorageConfig, opts: StorageModuleOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        NatsModule.forService('storage'),
        DatabaseModule.forDataSource(() => storageDataSource(config.DATABASE_URL, config.DATABASE_POOL_SIZE)),
      ],
      providers: [
        ...(opts.clock ? [{ provide: CLOCK, useValue: opts.clock }] : []),
        {
          provide: StorageDatabases,
          inject: [APP_CONFIG, DataSource, READINESS],
          useFactory: async (c: StorageConfig, ds: DataSource, readiness: ReadinessRegistry) => {
            const dbs = await StorageDatabases.open(c, ds);
            for (const db of dbs.all()) {
              if (db.region) readiness.register(`database_${db.region}`, () => db.ds.query('SELECT 1'));
            }
            return dbs;
          },
        },
        DatabasesLifecycle,
        KeyRotation,
        NumberDirectory,
        NumberRegistry,
        MessageWriter,
        StatusWriter,
        PendingWriter,
        PendingQueue,
        PendingExpiry,
        RetentionMetrics,
        Purger,
        PurgeScheduler,
        Eraser,
        StorageConsumers,
      ],
    };
  }
}
