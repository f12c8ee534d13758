import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock } from '@relay/platform';
import { BF_CONFIG } from '../common/tokens';
import type { BusinessForwardingConfig } from '../config';
import { TtlCache } from '../tenancy/ttl-cache';
import { LimitsRepository } from './limits.repository';

export type QualityRating = 'GREEN' | 'YELLOW' | 'RED';
export interface Quality {
  rating: QualityRating;
  /** Spam reports and blocks (minus unblocks) over the last 7 days. */
  score: number;
  /** Sending is suspended (131048) until the score falls again. */
  blocked: boolean;
}

const WEEK_MS = 7 * 24 * 3600_000;
/** Meta's messaging-limit ladder; 0 stands for unlimited. */
export const TIERS = [250, 2000, 10_000, 100_000, 0] as const;

/** A number's quality from users' spam reports and blocks (7-day window), and what it does to its tier. */
@Injectable()
export class QualityService {
  constructor(
    @Inject(BF_CONFIG) private readonly config: BusinessForwardingConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly limits: LimitsRepository,
  ) {}

  /**
   * A second per number: reports move quality over minutes, sends come thousands per second. A report
   * consumed by this process is applied at once (forget); one consumed by another replica within the second.
   */
  private readonly cache = new TtlCache<Quality>(() => 1000);

  quality(phoneNumberId: string): Promise<Quality> {
    return this.cache.get(phoneNumberId, () => this.compute(phoneNumberId));
  }

  forget(phoneNumberId: string): void {
    this.cache.delete(phoneNumberId);
  }

  private async compute(phoneNumberId: string): Promise<Quality> {
    const since = new Date(this.clock.now().getTime() - WEEK_MS);
    const score = await this.limits.qualityScore(phoneNumberId, since);
    const c = this.config;
    const rating: QualityRating =
      score >= c.QUALITY_RED_REPORTS ? 'RED' : score >= c.QUALITY_YELLOW_REPORTS ? 'YELLOW' : 'GREEN';
    return { rating, score, blocked: score >= c.QUALITY_BLOCK_REPORTS };
  }

  /**
   * The tier after quality: YELLOW moves one step down Meta's ladder, RED two (250 is the floor);
   * a custom limit off the ladder is halved per step instead.
   */
  effectiveLimit(baseLimit: number, rating: QualityRating): number {
    const drop = rating === 'RED' ? 2 : rating === 'YELLOW' ? 1 : 0;
    if (drop === 0) return baseLimit;
    const idx = TIERS.indexOf(baseLimit as (typeof TIERS)[number]);
    if (idx >= 0) return TIERS[Math.max(0, idx - drop)];
    return Math.max(1, Math.floor(baseLimit / 2 ** drop));
  }
}
