import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { NatsBus, type ConsumerHandle } from '@relay/platform';
import { LimitsRepository } from './limits.repository';

/** business.abuse_report (spam reports, blocks, unblocks from gateway) -> the number's quality. */
@Injectable()
export class AbuseConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private handle?: ConsumerHandle;

  constructor(
    @Inject(NatsBus) private readonly bus: NatsBus,
    private readonly limits: LimitsRepository,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.handle = await this.bus.consume(
      'business.abuse_report',
      { durable: 'business-forwarding-abuse', concurrency: 16 },
      (r) => this.limits.insertAbuseReport(r),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.handle?.stop();
  }
}
