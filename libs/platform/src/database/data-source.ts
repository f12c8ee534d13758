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

/** A database the relay cannot use, said in terms an operator can act on (never with the password). */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
}

/**
 * Connects a DataSource. The driver's own messages for the usual set-up mistakes name neither the
 * database nor the fix; these say both.
 */
export async function initializeDataSource(ds: DataSource, setting = 'DATABASE_URL'): Promise<DataSource> {
  if (ds.isInitialized) return ds;
  try {
    return await ds.initialize();
  } catch (err) {
    const code = (err as { code?: string }).code;
    let where = 'the database';
    let name = '';
    try {
      const u = new URL((ds.options as { url?: string }).url ?? '');
      name = decodeURIComponent(u.pathname.slice(1));
      where = `database "${name}" on ${u.host}`;
    } catch {
      // not a URL: keep the generic wording
    }
    if (code === '3D000')
      throw new DatabaseUnavailableError(
        `${where} does not exist: create it (for example \`createdb ${name || '<name>'}\`) or point ${setting} at one that does`,
      );
    if (code === '28P01' || code === '28000')
      throw new DatabaseUnavailableError(
        `${where} refused the login: check the user and password in ${setting}`,
      );
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN')
      throw new DatabaseUnavailableError(
        `${where} is not reachable (${code}): check the host and port in ${setting}`,
      );
    throw err;
  }
}

/** Creates the service's schema (the migrations table lives in it) and applies pending migrations. */
export async function migrate(ds: DataSource): Promise<string[]> {
  const opts = ds.options as { schema?: string };
  await initializeDataSource(ds);
  if (opts.schema) await ds.query(`CREATE SCHEMA IF NOT EXISTS "${opts.schema.replace(/"/g, '')}"`);
  const applied = await ds.runMigrations({ transaction: 'each' });
  return applied.map((m) => m.name);
}
