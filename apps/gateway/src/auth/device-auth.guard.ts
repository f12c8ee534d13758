import {
  createParamDecorator,
  Inject,
  Injectable,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { Request } from 'express';
import { DeviceAuthService, type AuthenticatedDevice } from './device-auth.service';

type AuthedRequest = Request & { device?: AuthenticatedDevice };

/** Requires valid device credentials (HTTP Basic) and attaches the device to the request. */
@Injectable()
export class DeviceAuthGuard implements CanActivate {
  constructor(@Inject(DeviceAuthService) private readonly auth: DeviceAuthService) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    req.device = await this.auth.authenticate(req.headers.authorization);
    return true;
  }
}

export const CurrentDevice = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): AuthenticatedDevice => {
    const device = ctx.switchToHttp().getRequest<AuthedRequest>().device;
    if (!device) throw new Error('CurrentDevice used without DeviceAuthGuard');
    return device;
  },
);
