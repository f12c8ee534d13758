import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock } from '@relay/platform';
import { BF_CONFIG } from '../common/tokens';
import type { BusinessForwardingConfig } from '../config';
import {
  TenantRepository,
  type BusinessRow,
  type NumberRow,
  type SubscriptionRow,
} from './tenant.repository';
import { TtlCache } from './ttl-cache';

/**
 * Numbers, businesses and webhook subscriptions as the hot paths read them (every send, every status
 * batch), cached for AUTH_CACHE_MS. Whatever this process changes it forgets at once; a change made
 * through another replica is seen here within AUTH_CACHE_MS. Rows are read with SELECT *, so a new
 * column reaches every reader without touching this cache.
 */
@Injectable()
export class TenantCache {
  private readonly numbers: TtlCache<NumberRow | undefined>;
  private readonly businesses: TtlCache<BusinessRow | undefined>;
  private readonly subscriptions: TtlCache<SubscriptionRow | undefined>;

  constructor(
    @Inject(BF_CONFIG) config: BusinessForwardingConfig,
    @Inject(CLOCK) clock: Clock,
    private readonly tenants: TenantRepository,
  ) {
    const ttl = () => config.AUTH_CACHE_MS;
    const now = () => clock.now().getTime();
    this.numbers = new TtlCache(ttl, now);
    this.businesses = new TtlCache(ttl, now);
    this.subscriptions = new TtlCache(ttl, now);
  }

  number(phoneNumberId: string): Promise<NumberRow | undefined> {
    return this.numbers.get(phoneNumberId, () => this.tenants.number(phoneNumberId));
  }

  business(wabaId: string): Promise<BusinessRow | undefined> {
    return this.businesses.get(wabaId, () => this.tenants.business(wabaId));
  }

  subscription(wabaId: string): Promise<SubscriptionRow | undefined> {
    return this.subscriptions.get(wabaId, () => this.tenants.subscription(wabaId));
  }

  forgetSubscription(wabaId: string): void {
    this.subscriptions.delete(wabaId);
  }

  /** After any change to a business, number or token made through this process. */
  forgetAll(): void {
    this.numbers.clear();
    this.businesses.clear();
    this.subscriptions.clear();
  }
}
