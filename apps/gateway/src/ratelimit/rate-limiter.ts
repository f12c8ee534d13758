import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { StorageType, type KV } from 'nats';
import type { Logger } from 'pino';
import { APP_CONFIG, APP_LOGGER, CLOCK, NatsBus, type Clock } from '@relay/platform';
import type { GatewayConfig } from '../config';
import { GatewayError } from '../http/gateway-error';
import { fullRefillMs, leasePolicy, takeUpTo, type BucketSpec, type BucketState } from './token-bucket';

export type LimitName = 'ip' | 'device_send' | 'device_business_send' | 'device_bundle' | 'verification';

/**
 * Limits where one request too many matters more than a round trip: each bundle fetch spends one of a
 * business's one-time prekeys, each verification sends an SMS. They stay exact (a compare-and-set per
 * request, never a lease).
 */
const EXACT_LIMITS: ReadonlySet<LimitName> = new Set(['device_bundle', 'verification']);

const MAX_CAS_ATTEMPTS = 12;
/** Past this many keys, idle ones (nothing leased, nothing waiting, no refusal to remember) are dropped. */
const MAX_KEYS = 50_000;

interface Waiter {
  resolve: (retryAfterMs: number | undefined) => void;
  reject: (err: unknown) => void;
}

/** What this process knows about one key. */
interface KeyState {
  limit: LimitName;
  /** Tokens already taken from the shared bucket for this process, not yet spent. */
  leased: number;
  /** Local clock ms after which unspent leased tokens are dropped (see leasePolicy for why). */
  leaseUntil: number;
  /** Extra tokens the next compare-and-set asks for: doubles when a lease runs out, halves when one expires. */
  leaseAsk: number;
  /** A refusal, remembered until the bucket has a token again. */
  deniedUntil: number;
  waiters: Waiter[];
  inflight: boolean;
  /** The entry as this process last wrote it: the next write tries it without reading first. */
  written?: { revision: number; state: BucketState };
}

/**
 * Token buckets shared by every gateway replica, kept in a NATS JetStream KV bucket: a take reads the
 * entry and writes it back conditioned on its revision (compare-and-set), retrying on a lost race, so
 * two replicas never both spend the same token. No extra server is needed.
 *
 * Round trips are amortized three ways. Concurrent takes of one key in this process share one
 * compare-and-set. A compare-and-set also leases a few extra tokens to this process (at most
 * leasePolicy().max, asked for in growing amounts while they are being spent), which later takes spend
 * without NATS; a lease lives only leasePolicy().ms, which is what bounds the overshoot (see
 * docs/device-protocol.md §11). And a refusal is remembered locally until the bucket has a token again.
 * A write is tried first without a read (from the entry as last written here, or a full bucket for a
 * key not written here yet), so a key used by one replica costs one request per lease.
 */
@Injectable()
export class RateLimiter implements OnModuleInit {
  private kv?: KV;
  private readonly specs: Record<LimitName, BucketSpec>;
  private readonly leaseFraction: number;
  private readonly keys = new Map<string, KeyState>();

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
    this.leaseFraction = config.RATE_LIMIT_LEASE_FRACTION;
  }

  /** KV bucket name for a subject root: one per deployment (and per test root). */
  static bucketName(root: string): string {
    return `${root.replace(/[^A-Za-z0-9_-]/g, '_')}_gateway_rate_limits`;
  }

  async onModuleInit(): Promise<void> {
    await this.provision();
  }

  /** Most tokens one lease holds and how long it lives, for a limit (max 0: exact, no leases). */
  lease(limit: LimitName): { max: number; ms: number } {
    return leasePolicy(this.specs[limit], EXACT_LIMITS.has(limit) ? 0 : this.leaseFraction);
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
    // Revisions remembered from before may belong to a bucket that no longer exists.
    for (const s of this.keys.values()) s.written = undefined;
  }

  /** Takes one token or throws GatewayError('rate_limited') carrying the wait. */
  async consume(limit: LimitName, key: string): Promise<void> {
    const retryAfterMs = await this.take(limit, key);
    if (retryAfterMs !== undefined) {
      throw new GatewayError('rate_limited', `rate limit ${limit} exceeded`, retryAfterMs);
    }
  }

  /** Returns undefined when allowed, else milliseconds until a token is back. */
  take(limit: LimitName, key: string): Promise<number | undefined> {
    const kvKey = kvKeyOf(limit, key);
    const now = this.clock.now().getTime();
    let s = this.keys.get(kvKey);
    if (!s) {
      if (this.keys.size >= MAX_KEYS) this.sweep(now);
      s = {
        limit,
        leased: 0,
        leaseUntil: 0,
        leaseAsk: initialAsk(this.lease(limit).max),
        deniedUntil: 0,
        waiters: [],
        inflight: false,
      };
      this.keys.set(kvKey, s);
    }
    this.expireLease(s, now);
    if (s.waiters.length === 0) {
      if (s.leased > 0) {
        this.spendLeased(s, now);
        return Promise.resolve(undefined);
      }
      if (s.deniedUntil > now) return Promise.resolve(s.deniedUntil - now);
    }
    return new Promise((resolve, reject) => {
      s.waiters.push({ resolve, reject });
      if (!s.inflight) this.flush(kvKey, s);
    });
  }

  /** A lease spent before it expired means the key is busy: the next compare-and-set asks for twice as many. */
  private spendLeased(s: KeyState, now: number): void {
    s.leased--;
    if (s.leased === 0 && now < s.leaseUntil) s.leaseAsk = Math.min(this.lease(s.limit).max, s.leaseAsk * 2);
  }

  /** Unspent tokens of an expired lease are dropped (not returned): that is what keeps the bound. */
  private expireLease(s: KeyState, now: number): void {
    if (s.leased > 0 && now >= s.leaseUntil) {
      s.leased = 0;
      s.leaseAsk = Math.max(1, Math.floor(s.leaseAsk / 2));
    }
  }

  private flush(kvKey: string, s: KeyState): void {
    const waiters = s.waiters;
    s.waiters = [];
    s.inflight = true;
    const { max, ms } = this.lease(s.limit);
    const ask = Math.min(max, s.leaseAsk);
    // A lease's life counts from before its tokens left the bucket, never from after.
    const started = this.clock.now().getTime();
    void this.takeBatch(kvKey, s, waiters.length + ask)
      .then(
        ({ granted, retryAfterMs }) => {
          const now = this.clock.now().getTime();
          waiters.forEach((w, i) => w.resolve(i < granted ? undefined : retryAfterMs));
          if (granted > waiters.length) {
            s.leased = granted - waiters.length;
            s.leaseUntil = started + ms;
          } else if (granted < waiters.length) {
            s.deniedUntil = now + retryAfterMs;
          }
        },
        (err: unknown) => waiters.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        s.inflight = false;
        this.drain(kvKey, s);
      });
  }

  /** Takes that queued while a compare-and-set was in flight: from the new lease, else a refusal, else another round. */
  private drain(kvKey: string, s: KeyState): void {
    const now = this.clock.now().getTime();
    this.expireLease(s, now);
    while (s.waiters.length > 0 && s.leased > 0) {
      this.spendLeased(s, now);
      s.waiters.shift()?.resolve(undefined);
    }
    if (s.waiters.length > 0 && s.deniedUntil > now) {
      for (const w of s.waiters.splice(0)) w.resolve(s.deniedUntil - now);
    }
    if (s.waiters.length > 0) this.flush(kvKey, s);
  }

  private async takeBatch(kvKey: string, s: KeyState, wanted: number) {
    const kv = this.kv;
    if (!kv) throw new GatewayError('unavailable', 'rate limiter not ready');
    const spec = this.specs[s.limit];
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      let revision: number | undefined;
      let r: ReturnType<typeof takeUpTo> | undefined;
      // First write without reading: the entry as this process last wrote it or, for a key it has not
      // written, no entry (a full bucket). A wrong guess costs one refused write, then we read. A
      // refusal computed from a guess may be stale (a reset elsewhere, a NATS restart): read to be sure.
      let guessed = false;
      if (attempt === 0) {
        const g = takeUpTo(spec, s.written?.state, this.clock.now().getTime(), wanted);
        if (g.granted > 0) {
          guessed = true;
          revision = s.written?.revision;
          r = g;
        }
      }
      if (!r) {
        const entry = await kv.get(kvKey).catch(() => null);
        const live = entry && entry.operation === 'PUT' ? entry : null;
        revision = entry?.revision;
        r = takeUpTo(
          spec,
          live ? (live.json() as BucketState) : undefined,
          this.clock.now().getTime(),
          wanted,
        );
        if (r.granted === 0) return r;
      }
      const data = JSON.stringify(r.state);
      try {
        // previousSeq 0: only if there is no entry. (kv.create would read back a refused create itself.)
        const written = await kv.put(kvKey, data, { previousSeq: revision ?? 0 });
        s.written = { revision: written, state: r.state };
        return r;
      } catch (err) {
        s.written = undefined;
        if (!isCasConflict(err)) {
          this.log.error({ err: (err as Error).message, limit: s.limit }, 'rate limit store failed');
          void this.provision().catch(() => undefined);
          throw new GatewayError('unavailable', 'rate limit store unavailable');
        }
        // A wrong guess: read straight away. Another replica won: back off a little so the next read
        // sees its write.
        if (guessed) continue;
        await new Promise((res) => setTimeout(res, Math.random() * 4 * (attempt + 1)));
      }
    }
    throw new GatewayError('unavailable', 'rate limit contention, retry');
  }

  /**
   * Forgets a bucket everywhere (e.g. per-business state on erasure). Another replica's unspent lease
   * on the key lives on until it expires.
   */
  async reset(limit: LimitName, key: string): Promise<boolean> {
    const kvKey = kvKeyOf(limit, key);
    const s = this.keys.get(kvKey);
    if (s && s.waiters.length === 0 && !s.inflight) this.keys.delete(kvKey);
    else if (s) Object.assign(s, { leased: 0, deniedUntil: 0, written: undefined });
    const entry = await this.kv?.get(kvKey).catch(() => null);
    if (!entry || entry.operation !== 'PUT') return false;
    await this.kv?.purge(kvKey);
    return true;
  }

  private sweep(now: number): void {
    for (const [k, s] of this.keys) {
      const idle = s.waiters.length === 0 && !s.inflight && s.deniedUntil <= now;
      if (idle && (s.leased === 0 || s.leaseUntil <= now)) this.keys.delete(k);
    }
  }
}

function kvKeyOf(limit: LimitName, key: string): string {
  return `${limit}.${key.replace(/[^A-Za-z0-9_=-]/g, '_')}`;
}

/** A key seen for the first time asks for a quarter of the most a lease may hold. */
function initialAsk(max: number): number {
  return max === 0 ? 0 : Math.max(1, Math.ceil(max / 4));
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
