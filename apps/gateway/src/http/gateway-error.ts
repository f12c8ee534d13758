import type { DeviceHttpErrorCode } from '@relay/protocol';

const STATUS: Record<DeviceHttpErrorCode, number> = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  invalid_signature: 422,
  verification_failed: 422,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
};

/** The gateway's domain error: a documented code, its HTTP status, and for 429 when to retry. */
export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  constructor(
    readonly code: DeviceHttpErrorCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
  get status(): number {
    return STATUS[this.code];
  }
}
