import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DataSource, In } from 'typeorm';
import { CLOCK, NatsBus, type Clock } from '@relay/platform';
import type { EventPayload } from '@relay/protocol';
import { DeviceRow } from '../accounts/device.entity';
import { RateLimiter } from '../ratelimit/rate-limiter';
import { BusinessBlockRow } from './block.entity';

const CONSUMER = 'gateway-erase';

/**
 * The gateway's part of an erasure: the per-business state it holds for users (blocks and the
 * per-(device, business) rate-limit buckets). Idempotent by request id; completion is reported with
 * counts only.
 */
@Injectable()
export class EraseConsumer implements OnApplicationBootstrap {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.consume('business.erase_requested', { durable: CONSUMER }, (req) => this.erase(req));
  }

  async erase(req: EventPayload<'business.erase_requested'>): Promise<void> {
    const counts = { business_blocks: 0, rate_limit_buckets: 0 };
    const pnids = req.phone_number_ids;
    await this.ds.transaction(async (em) => {
      const fresh: unknown[] = await em.query(
        `INSERT INTO "gateway"."processed_events" (consumer, event_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING RETURNING event_id`,
        [CONSUMER, req.request_id],
      );
      if (fresh.length === 0 || pnids.length === 0) return;
      const where =
        req.scope === 'user' && req.wa_id
          ? { waId: req.wa_id, phoneNumberId: In(pnids) }
          : { phoneNumberId: In(pnids) };
      counts.business_blocks = (await em.getRepository(BusinessBlockRow).delete(where)).affected ?? 0;
    });
    if (req.scope === 'user' && req.wa_id) {
      const devices = await this.ds
        .getRepository(DeviceRow)
        .find({ where: { waId: req.wa_id }, select: { deviceId: true } });
      for (const d of devices) {
        for (const p of pnids) {
          if (await this.limiter.reset('device_business_send', `${req.wa_id}.${d.deviceId}.${p}`))
            counts.rate_limit_buckets++;
        }
      }
    }
    await this.bus.publish(
      'business.erase_completed',
      { service: 'gateway' },
      { request_id: req.request_id, service: 'gateway', counts, at: this.clock.now().toISOString() },
      { msgId: `erase_completed.${req.request_id}.gateway` },
    );
  }
}
