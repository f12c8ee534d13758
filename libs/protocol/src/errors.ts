import type { z } from 'zod';

/** Error codes carried in RPC error replies; stable, documented in docs/nats-subjects.md. */
export const RPC_ERROR_CODES = [
  'invalid_payload',
  'not_found',
  'conflict',
  'rate_limited',
  'unavailable',
  'internal',
] as const;
export type RpcErrorCode = (typeof RPC_ERROR_CODES)[number];

/** The reply body of every RPC: exactly one of data or error. */
export type RpcReply<T> =
  { ok: true; data: T } | { ok: false; error: { code: RpcErrorCode; message: string } };

/** A payload that does not match its subject's schema. Consumers drop it (term), never crash on it. */
export class ProtocolValidationError extends Error {
  override readonly name = 'ProtocolValidationError';
  constructor(
    readonly subject: string,
    readonly issues: readonly { path: string; message: string }[],
  ) {
    super(
      `invalid payload on ${subject}: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }

  static fromZod(subject: string, error: z.ZodError): ProtocolValidationError {
    return new ProtocolValidationError(
      subject,
      error.issues.slice(0, 10).map((i) => ({ path: i.path.join('.'), message: i.message })),
    );
  }
}

/** A typed RPC failure from the responder (its code travels over the wire). */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  constructor(
    readonly code: RpcErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Parses a payload against a schema, throwing the typed error on mismatch. */
export function parsePayload<S extends z.ZodType>(subject: string, schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw ProtocolValidationError.fromZod(subject, r.error);
  return r.data;
}
