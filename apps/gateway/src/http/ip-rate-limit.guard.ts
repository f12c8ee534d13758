import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { APP_CONFIG } from '@relay/platform';
import type { GatewayConfig } from '../config';
import { RateLimiter } from '../ratelimit/rate-limiter';

/** The client's address: the socket peer, or the first X-Forwarded-For hop behind a trusted proxy. */
export function clientIp(req: IncomingMessage, trustProxy: boolean): string {
  const fwd = req.headers['x-forwarded-for'];
  if (trustProxy && typeof fwd === 'string' && fwd.length > 0) return fwd.split(',')[0].trim().slice(0, 64);
  return req.socket.remoteAddress ?? 'unknown';
}

/** Per-IP token bucket shared by all replicas, on every device API route. */
@Injectable()
export class IpRateLimitGuard implements CanActivate {
  constructor(
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    @Inject(APP_CONFIG) private readonly config: GatewayConfig,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<IncomingMessage>();
    await this.limiter.consume('ip', clientIp(req, this.config.TRUST_PROXY));
    return true;
  }
}
