import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { NatsBus, type ConsumerHandle } from '@relay/platform';
import { LimitsRepository } from './limits.repository';
import { QualityService } from './quality.service';

/** business.abuse_report (spam reports, blocks, unblocks from gateway) -> the number's quality. */
@Injectable()
export class AbuseConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private handle?: ConsumerHandle;

  constructor(
    @Inject(NatsBus) private readonly bus: NatsBus,
    private readonly limits: LimitsRepository,
    private readonly quality: QualityService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.handle = await this.bus.consume(
      'business.abuse_report',
      { durable: 'business-forwarding-abuse', concurrency: 16 },
      async (r) => {
        await this.limits.insertAbuseReport(r);
        this.quality.forget(r.phone_number_id);
      },
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.handle?.stop();
  }
}
