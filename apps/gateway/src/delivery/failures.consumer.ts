import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { NatsBus } from '@relay/platform';

/**
 * crypto's decrypt failures reach the device that sent the envelope. The durable consumer hands each
 * failure to one replica, which fans it out to all replicas; the one holding the device tells it.
 */
@Injectable()
export class FailuresConsumer implements OnApplicationBootstrap {
  constructor(@Inject(NatsBus) private readonly bus: NatsBus) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.consume(
      'inbound.failure',
      { durable: 'gateway-inbound-failure', deliverPolicy: 'new' },
      async (f) => {
        this.bus.notify('device.failure', { wa_id: f.from.wa_id, device_id: f.from.device_id }, f);
      },
    );
  }
}
