import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { CLOCK, type Clock } from '@relay/platform';
import { BF_CONFIG } from '../common/tokens';
import { CloudApiError } from '../common/errors';
import type { BusinessForwardingConfig } from '../config';
import type { Tenant } from '../tenancy/auth.service';
import { LimitsRepository, pairKey } from './limits.repository';
import { QualityService, type Quality } from './quality.service';

const DAY_MS = 24 * 3600_000;

export interface SendAttempt {
  tenant: Tenant;
  waId: string;
  /** The number's quality, read before the batch (cached). */
  quality: Quality;
}

/**
 * Cloud API's business-side limits, in the order they are checked: account state, registration,
 * recipient (blocked, 24-hour window), quality, then the counters that consume quota (throughput,
 * pair rate, messaging-limit tier). State is in Postgres, so limits hold across replicas; sends are
 * admitted a batch at a time, each answered as if it had been checked alone, in arrival order.
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

  /** The checks that need no database: account state and registration. */
  precheck({ business, number }: Tenant): void {
    if (business.status === 'restricted') {
      throw new CloudApiError(368, 'This business account is restricted from messaging by the operator.');
    }
    if (!number.registered) {
      throw new CloudApiError(133010, 'The phone number is not registered. Call /register first.');
    }
  }

  async qualityOf({ number }: Tenant): Promise<Quality> {
    return this.quality.quality(number.phone_number_id);
  }

  /**
   * Admits a batch inside the caller's transaction: null for an admitted send, its error otherwise.
   * Quota is consumed as it would be one by one: a send refused for throughput still counts in its
   * second; the pair token and the tier are only taken by sends that passed the checks before.
   */
  async admitMany(em: EntityManager, sends: SendAttempt[], now: Date): Promise<(CloudApiError | null)[]> {
    const nowMs = now.getTime();
    const out: (CloudApiError | null)[] = sends.map(() => null);
    const states = await this.repo.checkRecipientsAndCount(
      em,
      sends.map((s) => ({
        phoneNumberId: s.tenant.number.phone_number_id,
        waId: s.waId,
        qualityBlocked: s.quality.blocked,
      })),
      new Date(nowMs - DAY_MS),
      Math.floor(nowMs / 1000),
    );
    // The statement counted exactly the sends that pass here, per number, in this order.
    const passed = new Map<string, number>();
    let live: number[] = [];
    sends.forEach((s, i) => {
      const st = states[i];
      if (st.blocked) out[i] = new CloudApiError(131026, "The recipient is on this number's block list.");
      else if (!st.inWindow) {
        out[i] = new CloudApiError(
          131047,
          'Message failed to send because more than 24 hours have passed since the customer last replied to this number.',
        );
      } else if (s.quality.blocked) {
        out[i] = new CloudApiError(
          131048,
          'Message failed to send because there are restrictions on how many messages can be sent from this phone number: too many users reported or blocked it.',
        );
      } else {
        const pnid = s.tenant.number.phone_number_id;
        passed.set(pnid, (passed.get(pnid) ?? 0) + 1);
        live.push(i);
      }
    });
    if (live.length === 0) return out;

    const seen = new Map<string, number>();
    live = live.filter((i) => {
      const number = sends[i].tenant.number;
      const pnid = number.phone_number_id;
      const k = (seen.get(pnid) ?? 0) + 1;
      seen.set(pnid, k);
      const position = (states[i].tpTotal ?? 0) - (passed.get(pnid) ?? 0) + k;
      if (position <= (number.throughput_mps ?? this.config.DEFAULT_THROUGHPUT_MPS)) return true;
      out[i] = new CloudApiError(130429, 'Cloud API message throughput has been reached.');
      return false;
    });
    live = await this.pairRate(em, sends, live, out, nowMs);
    await this.tier(em, sends, live, out, now);
    return out;
  }

  /** Once a minute, outside any batch: drops limit state nobody can need any more. */
  async pruneIfDue(): Promise<void> {
    const nowMs = this.clock.now().getTime();
    if (nowMs - this.lastPrune <= 60_000) return;
    this.lastPrune = nowMs;
    await this.repo.prune(nowMs);
  }

  /** Pair tokens in rounds: the k-th send of a pair in this batch takes its token in round k. */
  private async pairRate(
    em: EntityManager,
    sends: SendAttempt[],
    live: number[],
    out: (CloudApiError | null)[],
    nowMs: number,
  ): Promise<number[]> {
    const rounds: number[][] = [];
    const occurrences = new Map<string, number>();
    for (const i of live) {
      const key = pairKey(sends[i].tenant.number.phone_number_id, sends[i].waId);
      const k = occurrences.get(key) ?? 0;
      occurrences.set(key, k + 1);
      (rounds[k] ??= []).push(i);
    }
    const passed = new Set<number>();
    for (const round of rounds) {
      const granted = await this.repo.takePairTokens(
        em,
        round.map((i) => {
          const n = sends[i].tenant.number;
          return {
            phoneNumberId: n.phone_number_id,
            waId: sends[i].waId,
            burst: n.pair_burst ?? this.config.DEFAULT_PAIR_BURST,
            refillMs: n.pair_refill_ms ?? this.config.DEFAULT_PAIR_REFILL_MS,
          };
        }),
        nowMs,
      );
      for (const i of round) {
        if (granted.has(pairKey(sends[i].tenant.number.phone_number_id, sends[i].waId))) passed.add(i);
        else {
          out[i] = new CloudApiError(
            131056,
            'Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.',
          );
        }
      }
    }
    return live.filter((i) => passed.has(i));
  }

  /**
   * Messaging-limit tier: a user already contacted in the rolling 24 h is free; a new one is admitted
   * only while fewer than the business's limit (after quality) were contacted.
   */
  private async tier(
    em: EntityManager,
    sends: SendAttempt[],
    live: number[],
    out: (CloudApiError | null)[],
    now: Date,
  ): Promise<void> {
    const limitOf = (i: number) => {
      const s = sends[i];
      const base = s.tenant.business.messaging_limit ?? this.config.DEFAULT_MESSAGING_LIMIT;
      return this.quality.effectiveLimit(base, s.quality.rating);
    };
    const limited = live.filter((i) => limitOf(i) > 0);
    if (limited.length === 0) return;
    const wabas = limited.map((i) => sends[i].tenant.business.waba_id);
    await this.repo.lockTiers(em, wabas);
    const { recent, known } = await this.repo.tierState(
      em,
      wabas,
      limited.map((i) => ({ wabaId: sends[i].tenant.business.waba_id, waId: sends[i].waId })),
      new Date(now.getTime() - DAY_MS),
    );
    const contacted: { wabaId: string; waId: string }[] = [];
    for (const i of limited) {
      const wabaId = sends[i].tenant.business.waba_id;
      const key = pairKey(wabaId, sends[i].waId);
      const limit = limitOf(i);
      if (!known.has(key)) {
        const n = recent.get(wabaId) ?? 0;
        if (n >= limit) {
          out[i] = new CloudApiError(
            131048,
            `Messaging limit reached: at most ${limit} unique users per rolling 24 hours for this business (quality ${sends[i].quality.rating}).`,
          );
          continue;
        }
        recent.set(wabaId, n + 1);
        known.add(key);
      }
      contacted.push({ wabaId, waId: sends[i].waId });
    }
    if (contacted.length > 0) await this.repo.touchTier(em, contacted, now);
  }
}
