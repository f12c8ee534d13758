import type { z } from 'zod';
import { GatewayError } from './gateway-error';

/** Validates a request body or param against its schema; the message names the first problems. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what = 'body'): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const detail = r.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || what}: ${i.message}`)
    .join('; ');
  throw new GatewayError('invalid_request', detail);
}
