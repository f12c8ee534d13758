import type { TestDatabase } from './database';
import { TEST_NATS_URL } from './nats';

/** Environment for starting a service against the test's own database and subject root. */
export function serviceEnv(
  db: TestDatabase,
  root: string,
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: '0',
    NATS_URL: TEST_NATS_URL,
    NATS_SUBJECT_ROOT: root,
    DATABASE_URL: db.url,
    SHUTDOWN_TIMEOUT_MS: '3000',
    ...extra,
  };
}

/** Polls until fn returns a truthy value or the time is up. */
export async function waitFor<T>(fn: () => Promise<T> | T, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(
    `waitFor timed out after ${timeoutMs} ms${lastErr ? `: ${(lastErr as Error).message}` : ''}`,
  );
}
