import { Catch, HttpException, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { APP_LOGGER } from '@relay/platform';
import type { DeviceHttpError, DeviceHttpErrorCode } from '@relay/protocol';
import { GatewayError } from './gateway-error';

/** Errors body-parser raises before a route runs (it sets `type`). */
function bodyParserError(err: unknown): GatewayError | undefined {
  const e = err as { type?: string; status?: number };
  if (e?.type === 'entity.too.large') return new GatewayError('payload_too_large', 'request body too large');
  if (e?.type === 'entity.parse.failed') return new GatewayError('invalid_request', 'body is not valid JSON');
  if (typeof e?.type === 'string' && e.status && e.status < 500) {
    return new GatewayError('invalid_request', 'unreadable request body');
  }
  return undefined;
}

function fromHttpException(err: HttpException): GatewayError {
  const status = err.getStatus();
  const code: DeviceHttpErrorCode =
    status === 404
      ? 'not_found'
      : status === 413
        ? 'payload_too_large'
        : status < 500
          ? 'invalid_request'
          : 'internal';
  return new GatewayError(code, status === 404 ? 'no such endpoint' : err.message);
}

/** Every error of the device API leaves in one documented shape: {error: {code, message}}. */
@Catch()
export class DeviceApiErrorFilter implements ExceptionFilter {
  constructor(@Inject(APP_LOGGER) private readonly log: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const req = host.switchToHttp().getRequest<Request>();
    let err: GatewayError;
    if (exception instanceof GatewayError) err = exception;
    else if (bodyParserError(exception)) err = bodyParserError(exception) as GatewayError;
    else if (exception instanceof HttpException) err = fromHttpException(exception);
    else {
      this.log.error({ err: (exception as Error)?.message, path: req.path }, 'unhandled error in request');
      err = new GatewayError('internal', 'internal error');
    }
    if (res.headersSent) return;
    const body: DeviceHttpError = { error: { code: err.code, message: err.message } };
    if (err.retryAfterMs !== undefined) {
      body.error.retry_after_ms = err.retryAfterMs;
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
    }
    res.status(err.status).json(body);
  }
}
