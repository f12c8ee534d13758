import { Inject, Injectable } from '@nestjs/common';
import { NatsBus } from '@relay/platform';
import { RpcError, type PreKeyBundle } from '@relay/protocol';
import { GatewayError } from '../http/gateway-error';
import { RateLimiter } from '../ratelimit/rate-limiter';
import type { AuthenticatedDevice } from '../auth/device-auth.service';

/** A business's prekey bundle from crypto, rate limited per device (each fetch spends a one-time key). */
@Injectable()
export class BusinessBundleService {
  constructor(
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
  ) {}

  async fetch(device: AuthenticatedDevice, phoneNumberId: string): Promise<PreKeyBundle> {
    await this.limiter.consume('device_bundle', `${device.waId}.${device.deviceId}`);
    try {
      return await this.bus.request('crypto.business_bundle', {
        phone_number_id: phoneNumberId,
        requester: { wa_id: device.waId, device_id: device.deviceId },
      });
    } catch (err) {
      throw toGatewayError(err);
    }
  }
}

/** Maps a failed RPC to the device API's error (timeouts and NATS trouble are 503: retry later). */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof RpcError) {
    if (err.code === 'not_found') return new GatewayError('not_found', 'no such business number');
    if (err.code === 'rate_limited')
      return new GatewayError('rate_limited', 'business is rate limited', 1000);
    if (err.code === 'invalid_payload') return new GatewayError('invalid_request', err.message);
  }
  return new GatewayError('unavailable', 'service temporarily unavailable, retry later');
}
