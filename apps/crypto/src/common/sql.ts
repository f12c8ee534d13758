import type { DataSource, QueryRunner } from 'typeorm';

/** Runs a statement and returns its rows (also for UPDATE/DELETE ... RETURNING). */
export async function rows<T>(runner: QueryRunner, sql: string, params: unknown[] = []): Promise<T[]> {
  const r = (await runner.query(sql, params, true)) as { records: T[] };
  return r.records;
}

/** Rows per multi-row statement (Postgres allows 65535 parameters per statement). */
export const MAX_ROWS = 1000;

export async function forChunks<T>(
  items: T[],
  fn: (chunk: T[], offset: number) => Promise<void>,
): Promise<void> {
  for (let at = 0; at < items.length; at += MAX_ROWS) await fn(items.slice(at, at + MAX_ROWS), at);
}

/**
 * A multi-row VALUES list with one placeholder per value: Buffers then travel as binary parameters, where
 * an unnest() of a bytea[] array would hex-encode every blob into one huge text literal.
 */
export function valuesList(rowCount: number, casts: string[]): string {
  const out: string[] = [];
  for (let r = 0; r < rowCount; r++) {
    out.push(`(${casts.map((c, i) => `$${r * casts.length + i + 1}::${c}`).join(', ')})`);
  }
  return out.join(', ');
}

/** Postgres errors after which the whole transaction is simply run again. */
const RETRYABLE = new Set(['40001', '40P01', '23505']);

export class TransactionConflictError extends Error {
  override readonly name = 'TransactionConflictError';
}

/**
 * One transaction on its own connection. A serialization failure, deadlock or unique violation (another
 * process consumed the same one-time prekey or recorded the same Kyber triple first) rolls everything
 * back and runs `fn` again from the start, so it sees the winner's committed state.
 */
export async function inTransaction<T>(
  ds: DataSource,
  fn: (runner: QueryRunner) => Promise<T>,
  attempts = 5,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const runner = ds.createQueryRunner();
    try {
      await runner.connect();
      await runner.startTransaction();
      const out = await fn(runner);
      await runner.commitTransaction();
      return out;
    } catch (err) {
      if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
      const code =
        (err as { code?: string; driverError?: { code?: string } }).driverError?.code ??
        (err as { code?: string }).code;
      const retry = err instanceof TransactionConflictError || (code !== undefined && RETRYABLE.has(code));
      if (!retry || attempt >= attempts) throw err;
    } finally {
      await runner.release();
    }
  }
}

export async function withRunner<T>(ds: DataSource, fn: (runner: QueryRunner) => Promise<T>): Promise<T> {
  const runner = ds.createQueryRunner();
  try {
    await runner.connect();
    return await fn(runner);
  } finally {
    await runner.release();
  }
}
