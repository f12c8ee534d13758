import {
  Global,
  Inject,
  Injectable,
  Module,
  type DynamicModule,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { APP_LOGGER, READINESS } from '../tokens';
import type { ReadinessRegistry } from '../http/readiness';
import { initializeDataSource } from './data-source';

@Injectable()
class DatabaseLifecycle implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}
  async onApplicationShutdown(): Promise<void> {
    if (this.ds.isInitialized) await this.ds.destroy();
  }
}

/** Provides the service's own DataSource (built from its data-source.ts) and its readiness check. */
@Global()
@Module({})
export class DatabaseModule {
  static forDataSource(factory: () => DataSource): DynamicModule {
    return {
      module: DatabaseModule,
      providers: [
        {
          provide: DataSource,
          inject: [APP_LOGGER, READINESS],
          useFactory: async (log: Logger, readiness: ReadinessRegistry) => {
            const ds = await initializeDataSource(factory());
            const pending = await ds.showMigrations();
            if (pending) log.warn('database has pending migrations: run `npm run db:migrate`');
            readiness.register('database', async () => {
              await ds.query('SELECT 1');
            });
            return ds;
          },
        },
        DatabaseLifecycle,
      ],
      exports: [DataSource],
    };
  }
}
