import type { DataSource, EntityManager } from 'typeorm';
import type { KeyRing } from '@relay/envelope-crypto';

/** One database of the service: the default one (region null) or a Local Storage region's. */
export interface StoreDb {
  readonly region: string | null;
  /** For logs and metrics: "default" or the region code. */
  readonly label: string;
  readonly ds: DataSource;
  /** Data keys of the numbers whose data lives here, kept in this same database. */
  readonly keys: KeyRing;
}

export type Tx = EntityManager;

/** TypeORM returns [rows, count] for UPDATE/DELETE ... RETURNING on Postgres. */
export function affected(result: unknown): number {
  if (Array.isArray(result) && typeof result[1] === 'number') return result[1];
  return Array.isArray(result) ? result.length : 0;
}

export function rowsOf<T>(result: unknown): T[] {
  if (Array.isArray(result) && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return result[0] as T[];
  }
  return result as T[];
}

const RETRYABLE = new Set(['40P01', '40001']);

/** Retries fn when Postgres chose it as a deadlock victim or failed it on serialization. */
export async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { driverError?: { code?: string } }).driverError?.code;
      if (attempt >= 4 || !code || !RETRYABLE.has(code)) throw err;
      await new Promise((r) => setTimeout(r, 5 * attempt));
    }
  }
}

/** Runs fn in a transaction, retrying a deadlock or serialization failure a few times. */
export function inTx<T>(db: StoreDb, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return retrying(() => db.ds.transaction(fn));
}
