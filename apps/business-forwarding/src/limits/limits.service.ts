import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock } from '@relay/platform';
import { BF_CONFIG } from '../common/tokens';
import { CloudApiError } from '../common/errors';
import type { BusinessForwardingConfig } from '../config';
import type { Tenant } from '../tenancy/auth.service';
import { LimitsRepository } from './limits.repository';
import { QualityService } from './quality.service';

const DAY_MS = 24 * 3600_000;

/**
 * Cloud API's business-side limits, in the order they are checked: account state, registration,
 * recipient (blocked, 24-hour window), quality, then the counters that consume quota (throughput,
 * pair rate, messaging-limit tier). State is in Postgres, so limits hold across replicas.
 */
@Injectable()
export class LimitsService {
  private lastPrune = 0;

  constructor(
    @Inject(BF_CONFIG) private readonly config: BusinessForwardingConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly repo: LimitsRepository,
    private readonly quality: QualityService,
  ) {}

  async admit({ business, number }: Tenant, waId: string): Promise<void> {
    if (business.status === 'restricted') {
      throw new CloudApiError(368, 'This business account is restricted from messaging by the operator.');
    }
    if (!number.registered) {
      throw new CloudApiError(133010, 'The phone number is not registered. Call /register first.');
    }
    const now = this.clock.now();
    const recipient = await this.repo.recipientState(number.phone_number_id, waId);
    if (recipient.blocked) {
      throw new CloudApiError(131026, "The recipient is on this number's block list.");
    }
    if (!recipient.lastInbound || now.getTime() - recipient.lastInbound.getTime() > DAY_MS) {
      throw new CloudApiError(
        131047,
        'Message failed to send because more than 24 hours have passed since the customer last replied to this number.',
      );
    }
    const q = await this.quality.quality(number.phone_number_id);
    if (q.blocked) {
      throw new CloudApiError(
        131048,
        'Message failed to send because there are restrictions on how many messages can be sent from this phone number: too many users reported or blocked it.',
      );
    }
    await this.consume({ business, number }, waId, now, q.rating);
  }

  private async consume(
    { business, number }: Tenant,
    waId: string,
    now: Date,
    rating: 'GREEN' | 'YELLOW' | 'RED',
  ): Promise<void> {
    const nowMs = now.getTime();
    const pnid = number.phone_number_id;
    const quota = await this.repo.takeSendQuota(
      pnid,
      waId,
      number.throughput_mps ?? this.config.DEFAULT_THROUGHPUT_MPS,
      number.pair_burst ?? this.config.DEFAULT_PAIR_BURST,
      number.pair_refill_ms ?? this.config.DEFAULT_PAIR_REFILL_MS,
      nowMs,
    );
    if (!quota.throughput) {
      throw new CloudApiError(130429, 'Cloud API message throughput has been reached.');
    }
    if (!quota.pair) {
      throw new CloudApiError(
        131056,
        'Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.',
      );
    }
    const base = business.messaging_limit ?? this.config.DEFAULT_MESSAGING_LIMIT;
    const limit = this.quality.effectiveLimit(base, rating);
    if (limit > 0) {
      const admitted = await this.repo.admitToTier(
        business.waba_id,
        waId,
        now,
        new Date(nowMs - DAY_MS),
        limit,
      );
      if (!admitted) {
        throw new CloudApiError(
          131048,
          `Messaging limit reached: at most ${limit} unique users per rolling 24 hours for this business (quality ${rating}).`,
        );
      }
    }
    if (nowMs - this.lastPrune > 60_000) {
      this.lastPrune = nowMs;
      await this.repo.prune(nowMs);
    }
  }
}
