import { Inject, Injectable } from '@nestjs/common';
import { BF_CONFIG } from '../common/tokens';
import type { BusinessForwardingConfig } from '../config';
import { DataKeys } from '../tenancy/data-keys.service';
import { TenantRepository } from '../tenancy/tenant.repository';

export interface WebhookTarget {
  url: string;
  timeoutMs: number;
  maxConcurrency: number;
  maxEventsPerPost: number;
  appSecret: string;
}

const TTL_MS = 2000;

/** Where and how to deliver a business's webhooks; cached briefly, decrypted only in memory. */
@Injectable()
export class WebhookTargets {
  private readonly cache = new Map<string, { target?: WebhookTarget; until: number }>();

  constructor(
    @Inject(BF_CONFIG) private readonly config: BusinessForwardingConfig,
    private readonly tenants: TenantRepository,
    private readonly keys: DataKeys,
  ) {}

  async get(wabaId: string): Promise<WebhookTarget | undefined> {
    const hit = this.cache.get(wabaId);
    if (hit && hit.until > Date.now()) return hit.target;
    const [sub, business] = await Promise.all([
      this.tenants.subscription(wabaId),
      this.tenants.business(wabaId),
    ]);
    const target =
      sub && business
        ? {
            url: sub.callback_url,
            timeoutMs: sub.timeout_ms,
            maxConcurrency: sub.max_concurrency,
            maxEventsPerPost: sub.max_events_per_post ?? this.config.WEBHOOK_MAX_EVENTS_PER_POST,
            appSecret: (
              await this.keys.open(wabaId, business.app_secret_enc, `appsecret:${wabaId}`)
            ).toString('utf8'),
          }
        : undefined;
    this.cache.set(wabaId, { target, until: Date.now() + TTL_MS });
    return target;
  }

  invalidate(wabaId: string): void {
    this.cache.delete(wabaId);
  }
}
