import { Inject, Injectable } from '@nestjs/common';
import type { z } from 'zod';
import { CLOCK, type Clock } from '@relay/platform';
import { BF_CONFIG, CRYPTO, WEBHOOK_HTTP } from '../common/tokens';
import type { CryptoAdapter } from '../common/crypto.adapter';
import { AdminError } from '../common/errors';
import type { BusinessForwardingConfig } from '../config';
import { DataKeys } from '../tenancy/data-keys.service';
import { TenantCache } from '../tenancy/tenant-cache.service';
import { TenantRepository } from '../tenancy/tenant.repository';
import { DispatchSignal } from '../webhooks/dispatch-signal';
import type { WebhookHttpClient } from '../webhooks/http-client';
import { OutboxRepository } from '../webhooks/outbox.repository';
import { WebhookTargets } from '../webhooks/webhook-targets';
import type { Replay, SetWebhook } from './admin.schemas';

const notFound = (what: string) => new AdminError(404, 'not_found', `${what} not found`);

/** Webhook subscriptions (with Meta's GET verification handshake), attempt log, dead letters. */
@Injectable()
export class WebhookAdminService {
  constructor(
    @Inject(BF_CONFIG) private readonly config: BusinessForwardingConfig,
    @Inject(CRYPTO) private readonly crypto: CryptoAdapter,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(WEBHOOK_HTTP) private readonly http: WebhookHttpClient,
    private readonly tenants: TenantRepository,
    private readonly keys: DataKeys,
    private readonly outbox: OutboxRepository,
    private readonly targets: WebhookTargets,
    private readonly cache: TenantCache,
    private readonly signal: DispatchSignal,
  ) {}

  async set(wabaId: string, s: z.infer<typeof SetWebhook>) {
    if (!(await this.tenants.business(wabaId))) throw notFound('business');
    const url = new URL(s.callback_url);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.config.WEBHOOK_ALLOW_HTTP)) {
      throw new AdminError(400, 'invalid_request', 'callback_url must use https');
    }
    await this.handshake(url, s.verify_token);
    await this.tenants.upsertSubscription({
      waba_id: wabaId,
      callback_url: s.callback_url,
      verify_token_enc: await this.keys.seal(wabaId, Buffer.from(s.verify_token), `verify:${wabaId}`),
      max_concurrency: Math.min(
        s.max_concurrency ?? this.config.WEBHOOK_MAX_CONCURRENCY,
        this.config.WEBHOOK_MAX_CONCURRENCY,
      ),
      max_events_per_post: s.max_events_per_post ?? null,
      timeout_ms: Math.min(s.timeout_ms ?? this.config.WEBHOOK_TIMEOUT_MS, this.config.WEBHOOK_TIMEOUT_MS),
      verified_at: this.clock.now(),
    });
    this.targets.invalidate(wabaId);
    this.cache.forgetSubscription(wabaId);
    this.signal.wake();
    return this.get(wabaId);
  }

  async get(wabaId: string) {
    const sub = await this.tenants.subscription(wabaId);
    if (!sub) throw notFound('webhook subscription');
    return {
      callback_url: sub.callback_url,
      max_concurrency: sub.max_concurrency,
      max_events_per_post: sub.max_events_per_post ?? this.config.WEBHOOK_MAX_EVENTS_PER_POST,
      timeout_ms: sub.timeout_ms,
      verified_at: sub.verified_at,
      queue: await this.outbox.stats(wabaId),
    };
  }

  async remove(wabaId: string) {
    if (!(await this.tenants.deleteSubscription(wabaId))) throw notFound('webhook subscription');
    this.targets.invalidate(wabaId);
    this.cache.forgetSubscription(wabaId);
    return { deleted: true };
  }

  async attempts(wabaId: string, limit: number, before?: string) {
    return { data: await this.outbox.attempts(wabaId, clamp(limit), before) };
  }

  async deadLetters(wabaId: string, limit: number, after?: string) {
    return { data: await this.outbox.deadLetters(wabaId, clamp(limit), after) };
  }

  async replay(wabaId: string, r: z.infer<typeof Replay>) {
    const now = this.clock.now();
    const n = await this.outbox.replay(
      wabaId,
      r.ids ?? null,
      now,
      new Date(now.getTime() + this.config.WEBHOOK_RETRY_WINDOW_MS),
    );
    this.signal.wake();
    return { replayed: n };
  }

  /** Meta's handshake: GET ?hub.mode=subscribe&hub.challenge&hub.verify_token, expecting the challenge back. */
  private async handshake(url: URL, verifyToken: string): Promise<void> {
    const challenge = this.crypto.randomToken(12);
    const u = new URL(url);
    u.searchParams.set('hub.mode', 'subscribe');
    u.searchParams.set('hub.challenge', challenge);
    u.searchParams.set('hub.verify_token', verifyToken);
    let res: { status: number; body: string };
    try {
      res = await this.http.get(u.toString(), this.config.WEBHOOK_TIMEOUT_MS);
    } catch (err) {
      throw new AdminError(400, 'verification_failed', `callback URL unreachable: ${(err as Error).message}`);
    }
    if (res.status !== 200 || res.body.trim() !== challenge) {
      throw new AdminError(
        400,
        'verification_failed',
        `callback answered HTTP ${res.status} without the challenge`,
      );
    }
  }
}

const clamp = (n: number) => Math.min(Math.max(Number.isFinite(n) ? n : 100, 1), 1000);
