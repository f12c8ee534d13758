import type { DataSource, EntityManager } from 'typeorm';

type Queryable = Pick<DataSource | EntityManager, 'query'>;

/**
 * Runs a statement and returns its rows. TypeORM answers UPDATE and DELETE with [rows, rowCount]
 * instead of rows; this hides that difference so RETURNING works the same for every statement.
 */
export async function rows<T>(db: Queryable, sql: string, params: unknown[] = []): Promise<T[]> {
  const r: unknown = await db.query(sql, params);
  if (Array.isArray(r) && r.length === 2 && Array.isArray(r[0]) && typeof r[1] === 'number') {
    return r[0] as T[];
  }
  return r as T[];
}
