import type { DeviceHttpErrorCode, FrameErrorCode } from '@relay/protocol';

/** The gateway refused an HTTP call; code is the documented error code. */
export class DeviceApiError extends Error {
  override readonly name = 'DeviceApiError';
  constructor(
    readonly status: number,
    readonly code: DeviceHttpErrorCode | 'network',
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** The gateway answered a WebSocket frame with an error frame. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly code: FrameErrorCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** The local key store could not be read (wrong passphrase, corrupt file) or written. */
export class KeyStoreError extends Error {
  override readonly name = 'KeyStoreError';
}

/** An operation needs a registered device. */
export class NotRegisteredError extends Error {
  override readonly name = 'NotRegisteredError';
  constructor() {
    super('device is not registered');
  }
}
