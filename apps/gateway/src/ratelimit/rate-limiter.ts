import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { StorageType, type KV } from 'nats';
import type { Logger } from 'pino';
import { APP_CONFIG, APP_LOGGER, CLOCK, NatsBus, type Clock } from '@relay/platform';
import type { GatewayConfig } from '../config';
import { GatewayError } from '../http/gateway-error';
import { fullRefillMs, takeUpTo, type BucketSpec, type BucketState } from './token-bucket';

export type LimitName = 'ip' | 'device_send' | 'device_business_send' | 'device_bundle' | 'verification';

const MAX_CAS_ATTEMPTS = 12;

interface Batch {
  limit: LimitName;
  waiters: { resolve: (retryAfterMs: number | undefined) => void; reject: (err: unknown) => void }[];
}
const DENIAL_CACHE_MAX = 50_000;

/**
 * Token buckets shared by every gateway replica, kept in a NATS JetStream KV bucket: a take reads the
 * entry and writes it back conditioned on its revision (compare-and-set), retrying on a lost race, so
 * two replicas never both spend the same token. No extra server is needed. A denial is remembered
 * locally until its retry time, so a client hammering a closed bucket costs no KV round trips.
 */
@Injectable()
export class RateLimiter implements OnModuleInit {
  private kv?: KV;
  private readonly specs: Record<LimitName, BucketSpec>;
  private readonly denied = new Map<string, number>();
  private readonly batches = new Map<string, Batch>();
  private readonly inflight = new Set<string>();

  constructor(
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(APP_CONFIG) config: GatewayConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_LOGGER) private readonly log: Logger,
  ) {
    this.specs = {
      ip: config.RATE_LIMIT_IP,
      device_send: config.RATE_LIMIT_DEVICE_SEND,
      device_business_send: config.RATE_LIMIT_DEVICE_BUSINESS_SEND,
      device_bundle: config.RATE_LIMIT_DEVICE_BUNDLE,
      verification: config.RATE_LIMIT_VERIFICATION,
    };
  }

  /** KV bucket name for a subject root: one per deployment (and per test root). */
  static bucketName(root: string): string {
    return `${root.replace(/[^A-Za-z0-9_-]/g, '_')}_gateway_rate_limits`;
  }

  async onModuleInit(): Promise<void> {
    await this.provision();
  }

  /** Creates (or binds to) the bucket. Also after a store failure: a restarted NATS lost this memory bucket. */
  private async provision(): Promise<void> {
    const ttlMs = Math.max(...Object.values(this.specs).map(fullRefillMs), 60_000);
    this.kv = await this.bus.js.views.kv(RateLimiter.bucketName(this.bus.root), {
      history: 1,
      storage: StorageType.Memory,
      // Past a full refill an entry says nothing a missing entry wouldn't (a full bucket).
      ttl: Math.min(ttlMs * 2, 24 * 3600 * 1000),
    });
  }

  /** Takes one token or throws GatewayError('rate_limited') carrying the wait. */
  async consume(limit: LimitName, key: string): Promise<void> {
    const retryAfterMs = await this.take(limit, key);
    if (retryAfterMs !== undefined) {
      throw new GatewayError('rate_limited', `rate limit ${limit} exceeded`, retryAfterMs);
    }
  }

  /**
   * Returns undefined when allowed, else milliseconds until a token is back. Concurrent takes of one
   * key in this process are batched into one compare-and-set, so CAS races happen only between
   * replicas, not between the requests of a burst.
   */
  take(limit: LimitName, key: string): Promise<number | undefined> {
    const kvKey = `${limit}.${key.replace(/[^A-Za-z0-9_=-]/g, '_')}`;
    const now = this.clock.now().getTime();
    const until = this.denied.get(kvKey);
    if (until !== undefined) {
      if (until > now) return Promise.resolve(until - now);
      this.denied.delete(kvKey);
    }
    return new Promise((resolve, reject) => {
      const batch = this.batches.get(kvKey) ?? { limit, waiters: [] };
      batch.waiters.push({ resolve, reject });
      if (batch.waiters.length === 1) {
        this.batches.set(kvKey, batch);
        if (!this.inflight.has(kvKey)) this.flush(kvKey);
      }
    });
  }

  private flush(kvKey: string): void {
    const batch = this.batches.get(kvKey);
    if (!batch) return;
    this.batches.delete(kvKey);
    this.inflight.add(kvKey);
    void this.takeBatch(kvKey, batch.limit, batch.waiters.length)
      .then(
        ({ granted, retryAfterMs }) => {
          batch.waiters.forEach((w, i) => w.resolve(i < granted ? undefined : retryAfterMs));
          if (granted < batch.waiters.length) this.remember(kvKey, this.clock.now().getTime() + retryAfterMs);
        },
        (err: unknown) => batch.waiters.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        this.inflight.delete(kvKey);
        if (this.batches.has(kvKey)) this.flush(kvKey);
      });
  }

  private async takeBatch(kvKey: string, limit: LimitName, wanted: number) {
    const kv = this.kv;
    if (!kv) throw new GatewayError('unavailable', 'rate limiter not ready');
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const entry = await kv.get(kvKey).catch(() => null);
      const live = entry && entry.operation === 'PUT' ? entry : null;
      const prev = live ? (live.json() as BucketState) : undefined;
      const r = takeUpTo(this.specs[limit], prev, this.clock.now().getTime(), wanted);
      if (r.granted === 0) return r;
      const data = JSON.stringify(r.state);
      try {
        if (entry) await kv.update(kvKey, data, entry.revision);
        else await kv.create(kvKey, data);
        return r;
      } catch (err) {
        if (!isCasConflict(err)) {
          this.log.error({ err: (err as Error).message, limit }, 'rate limit store failed');
          void this.provision().catch(() => undefined);
          throw new GatewayError('unavailable', 'rate limit store unavailable');
        }
        // Another replica won this round; back off a little so the next read sees its write.
        await new Promise((res) => setTimeout(res, Math.random() * 4 * (attempt + 1)));
      }
    }
    throw new GatewayError('unavailable', 'rate limit contention, retry');
  }

  /** Forgets a bucket everywhere (e.g. per-business state on erasure). */
  async reset(limit: LimitName, key: string): Promise<boolean> {
    const kvKey = `${limit}.${key.replace(/[^A-Za-z0-9_=-]/g, '_')}`;
    this.denied.delete(kvKey);
    const entry = await this.kv?.get(kvKey).catch(() => null);
    if (!entry || entry.operation !== 'PUT') return false;
    await this.kv?.purge(kvKey);
    return true;
  }

  private remember(key: string, until: number): void {
    if (this.denied.size >= DENIAL_CACHE_MAX) this.denied.clear();
    this.denied.set(key, until);
  }
}

function isCasConflict(err: unknown): boolean {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  // 10071: wrong last sequence (update raced); 10164 / "exists": create raced.
  return (
    e?.api_error?.err_code === 10071 ||
    e?.api_error?.err_code === 10164 ||
    /wrong last sequence|key exists|exists/i.test(e?.message ?? '')
  );
}
