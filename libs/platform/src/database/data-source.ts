import { DataSource, type DataSourceOptions, type MixedList, type EntitySchema } from 'typeorm';

export interface ServiceDataSourceOptions {
  url: string;
  /** Postgres schema the service owns; its tables and its migrations table live there. */
  schema: string;
  entities: MixedList<string | (new () => unknown) | EntitySchema>;
  migrations: MixedList<string | (new () => unknown)>;
  poolSize?: number;
  applicationName?: string;
}

/**
 * The one way a service builds its DataSource, shared by Nest and the migration CLI so both see the
 * same schema, entities and migrations. synchronize is off: the schema changes only by migrations.
 */
export function serviceDataSourceOptions(o: ServiceDataSourceOptions): DataSourceOptions {
  return {
    type: 'postgres',
    url: o.url,
    schema: o.schema,
    entities: o.entities,
    migrations: o.migrations,
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    migrationsRun: false,
    logging: ['error'],
    extra: { max: o.poolSize ?? 10, application_name: o.applicationName ?? o.schema },
  };
}

export function createServiceDataSource(o: ServiceDataSourceOptions): DataSource {
  return new DataSource(serviceDataSourceOptions(o));
}

/** Creates the service's schema (the migrations table lives in it) and applies pending migrations. */
export async function migrate(ds: DataSource): Promise<string[]> {
  const opts = ds.options as { schema?: string };
  if (!ds.isInitialized) await ds.initialize();
  if (opts.schema) await ds.query(`CREATE SCHEMA IF NOT EXISTS "${opts.schema.replace(/"/g, '')}"`);
  const applied = await ds.runMigrations({ transaction: 'each' });
  return applied.map((m) => m.name);
}
