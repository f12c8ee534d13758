import { Injectable, createParamDecorator, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { CloudApiError } from '../common/errors';
import { AuthService, type Tenant } from './auth.service';

const VERSION_RE = /^v\d{1,3}\.\d{1,3}$/;

type TenantRequest = Request & { tenant?: Tenant };

/**
 * Guards every Cloud API route: a `v<major>.<minor>` version prefix, a token (Bearer header or
 * access_token query parameter, as Graph accepts), and a phone number the token's business owns.
 */
@Injectable()
export class CloudAuthGuard implements CanActivate {
  constructor(private readonly auth: AuthService) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<TenantRequest>();
    const version = String(req.params.version ?? '');
    if (!VERSION_RE.test(version)) {
      throw new CloudApiError(100, `Unknown path components: unsupported version '${version.slice(0, 20)}'.`);
    }
    const wabaId = await this.auth.authenticate(bearer(req));
    req.tenant = await this.auth.tenantFor(wabaId, String(req.params.phoneNumberId ?? ''));
    return true;
  }
}

function bearer(req: Request): string | undefined {
  const h = req.headers.authorization;
  if (typeof h === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (m) return m[1];
  }
  const q = req.query.access_token;
  return typeof q === 'string' && q.length > 0 ? q : undefined;
}

export const CurrentTenant = createParamDecorator((_: unknown, ctx: ExecutionContext): Tenant => {
  const t = ctx.switchToHttp().getRequest<TenantRequest>().tenant;
  if (!t) throw new CloudApiError(0, 'Not authenticated.');
  return t;
});
