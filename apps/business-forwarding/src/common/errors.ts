import { CLOUD_API_ERRORS, type CloudApiErrorCode } from '@relay/protocol';

/** An error answered in Meta's envelope with Meta's code and HTTP status. */
export class CloudApiError extends Error {
  override readonly name = 'CloudApiError';
  constructor(
    readonly code: CloudApiErrorCode,
    readonly details: string,
    /** Extra top-level fields Meta returns next to `error` (e.g. block_users partial results). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(`(#${code}) ${CLOUD_API_ERRORS[code].title}: ${details}`);
  }
  get httpStatus(): number {
    return CLOUD_API_ERRORS[this.code].http;
  }
}

/** An error of the operator API: {error:{code, message}} with an HTTP status. */
export class AdminError extends Error {
  override readonly name = 'AdminError';
  constructor(
    readonly httpStatus: number,
    readonly code:
      'invalid_request' | 'unauthorized' | 'not_found' | 'conflict' | 'verification_failed' | 'internal',
    message: string,
  ) {
    super(message);
  }
}
