import { Catch, HttpException, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { APP_LOGGER } from '@relay/platform';
import { cloudApiErrorBody } from '@relay/protocol';
import { AdminError, CloudApiError } from './errors';
import { traceId } from './ids';

interface ParserError {
  type?: string;
  status?: number;
}

/**
 * Every error leaves as JSON in the envelope of the API it came from: Meta's envelope on the Cloud API
 * surface, {error:{code,message}} on /admin. Unknown errors are logged and answered 500 without detail.
 */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  constructor(@Inject(APP_LOGGER) private readonly log: Logger) {}

  catch(err: unknown, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<Request>();
    const res = host.switchToHttp().getResponse<Response>();
    if (res.headersSent) return;
    const admin = req.path.startsWith('/admin/');
    const parser = (err as ParserError)?.type;
    if (admin) {
      const e = this.toAdmin(err, parser);
      res.status(e.httpStatus).json({ error: { code: e.code, message: e.message } });
      return;
    }
    const e = this.toCloud(err, parser);
    res.status(e.httpStatus).json({ ...e.extra, ...cloudApiErrorBody(e.code, e.details, traceId()) });
  }

  private toCloud(err: unknown, parser?: string): CloudApiError {
    if (err instanceof CloudApiError) return err;
    if (parser === 'entity.too.large') return new CloudApiError(100, 'Request body is too large.');
    if (parser === 'parameters.too.many') return new CloudApiError(100, 'Too many form fields.');
    if (parser?.startsWith('entity.') || parser?.startsWith('charset.') || parser === 'encoding.unsupported')
      return new CloudApiError(100, 'The request body could not be parsed.');
    if (err instanceof HttpException && err.getStatus() === 404)
      return new CloudApiError(100, 'Unsupported request: unknown path or method.');
    if (err instanceof HttpException && err.getStatus() < 500) return new CloudApiError(100, err.message);
    this.log.error({ err: (err as Error)?.message }, 'unhandled error on the Cloud API');
    return new CloudApiError(131000, 'Something went wrong. Please retry.');
  }

  private toAdmin(err: unknown, parser?: string): AdminError {
    if (err instanceof AdminError) return err;
    if (parser) return new AdminError(400, 'invalid_request', 'the request body is not valid JSON');
    if (err instanceof HttpException && err.getStatus() === 404)
      return new AdminError(404, 'not_found', 'unknown path');
    if (err instanceof HttpException && err.getStatus() < 500)
      return new AdminError(400, 'invalid_request', err.message);
    this.log.error({ err: (err as Error)?.message }, 'unhandled error on the operator API');
    return new AdminError(500, 'internal', 'internal error');
  }
}
