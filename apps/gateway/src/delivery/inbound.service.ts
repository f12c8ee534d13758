import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, NatsBus, SubjectSequencer, type Clock } from '@relay/platform';
import type { SendFrame } from '@relay/protocol';
import type { AuthenticatedDevice } from '../auth/device-auth.service';
import { toGatewayError } from '../keys/business-bundle.service';
import { RateLimiter } from '../ratelimit/rate-limiter';

/**
 * A device's envelope to a business: limited per device and per (device, business), then made durable
 * in JetStream. The message id makes a resend of the same envelope id a no-op (JetStream answers
 * duplicate within its window; crypto drops later replays by envelope id). Each session's envelopes are
 * published one after another and stamped with their predecessor's stream sequence, so crypto reads a
 * session's envelopes back from the stream only when another process really holds one it must apply first.
 */
@Injectable()
export class InboundService {
  private readonly envelopes: SubjectSequencer<'device.envelope'>;

  constructor(
    @Inject(NatsBus) bus: NatsBus,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    this.envelopes = new SubjectSequencer(bus, 'device.envelope');
  }

  async send(device: AuthenticatedDevice, frame: SendFrame): Promise<{ duplicate: boolean }> {
    const who = `${device.waId}.${device.deviceId}`;
    await this.limiter.consume('device_send', who);
    await this.limiter.consume('device_business_send', `${who}.${frame.to}`);
    try {
      const ack = await this.envelopes.publish(
        // Per session: crypto reads a session's envelopes back in order from this subject.
        { phone_number_id: frame.to, wa_id: device.waId, device_id: device.deviceId },
        {
          envelope_id: frame.id,
          phone_number_id: frame.to,
          from: { wa_id: device.waId, device_id: device.deviceId },
          ...(frame.profile_name !== undefined ? { profile_name: frame.profile_name } : {}),
          type: frame.ciphertext_type,
          ciphertext: frame.ciphertext,
          received_at: this.clock.now().toISOString(),
        },
        { msgId: `${who}.${frame.id}` },
      );
      return { duplicate: ack.duplicate };
    } catch (err) {
      throw toGatewayError(err);
    }
  }
}
