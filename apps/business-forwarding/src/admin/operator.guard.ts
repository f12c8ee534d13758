import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { BF_CONFIG, CRYPTO } from '../common/tokens';
import type { CryptoAdapter } from '../common/crypto.adapter';
import { AdminError } from '../common/errors';
import type { BusinessForwardingConfig } from '../config';

/** The operator API takes one credential from the environment (OPERATOR_TOKEN), compared in constant time. */
@Injectable()
export class OperatorGuard implements CanActivate {
  constructor(
    @Inject(BF_CONFIG) private readonly config: BusinessForwardingConfig,
    @Inject(CRYPTO) private readonly crypto: CryptoAdapter,
  ) {}

  canActivate(ctx: ExecutionContext): boolean {
    const h = ctx.switchToHttp().getRequest<Request>().headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    if (!m || !this.crypto.safeEqual(m[1], this.config.OPERATOR_TOKEN)) {
      throw new AdminError(401, 'unauthorized', 'a valid operator token is required');
    }
    return true;
  }
}
