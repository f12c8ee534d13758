import {
  Inject,
  Injectable,
  type OnApplicationBootstrap,
  type BeforeApplicationShutdown,
} from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { APP_LOGGER, CLOCK, type Clock } from '@relay/platform';
import { BF_CONFIG, CRYPTO, RANDOM, WEBHOOK_HTTP, type RandomSource } from '../common/tokens';
import type { CryptoAdapter } from '../common/crypto.adapter';
import type { BusinessForwardingConfig } from '../config';
import { DataKeys } from '../tenancy/data-keys.service';
import { backoffMs } from './backoff';
import { DispatchSignal } from './dispatch-signal';
import type { WebhookHttpClient } from './http-client';
import { OutboxRepository, type AttemptResult, type ClaimedEvent } from './outbox.repository';
import { WebhookTargets, type WebhookTarget } from './webhook-targets';

/**
 * Delivers the outbox: claims due partition heads (leased, so replicas never send the same event at
 * once and a killed process's claims return), POSTs each with its signature, and records the attempt.
 * Only a 2xx accepts; anything else is retried with backoff until the event's deadline, then it is
 * dead-lettered. At most max_concurrency requests per endpoint are in flight from this process.
 */
/** Events of one partition claimed and sent per run, after its head went through. */
const RUN = 16;

@Injectable()
export class WebhookDispatcher implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly owner: string;
  private readonly inflight = new Set<Promise<void>>();
  private readonly perEndpoint = new Map<string, number>();
  private stopping = false;
  private loop?: Promise<void>;

  constructor(
    @Inject(BF_CONFIG) private readonly config: BusinessForwardingConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(RANDOM) private readonly random: RandomSource,
    @Inject(CRYPTO) private readonly crypto: CryptoAdapter,
    @Inject(WEBHOOK_HTTP) private readonly http: WebhookHttpClient,
    @Inject(APP_LOGGER) private readonly log: Logger,
    private readonly outbox: OutboxRepository,
    private readonly targets: WebhookTargets,
    private readonly keys: DataKeys,
    private readonly signal: DispatchSignal,
  ) {
    this.owner = `${process.pid}-${crypto.randomToken(6)}`;
  }

  onApplicationBootstrap(): void {
    this.loop = this.run();
  }

  /** Before the database closes: in-flight runs finish their attempt and record it. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    this.signal.wake();
    await this.loop;
    await Promise.allSettled([...this.inflight]);
  }

  /** Runs one claim round now (tests call it after moving the clock). */
  wake(): void {
    this.signal.wake();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let started = 0;
      try {
        started = await this.claimAndStart();
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'webhook claim failed');
      }
      if (started === 0) await this.signal.wait(this.config.WEBHOOK_POLL_MS);
    }
  }

  private async claimAndStart(): Promise<number> {
    const free = this.config.WEBHOOK_WORKERS - this.inflight.size;
    if (free <= 0) return 0;
    const now = this.clock.now();
    const claimed = await this.outbox.claim(
      now,
      free,
      this.leaseUntil(now),
      this.owner,
      this.perEndpoint,
      this.config.WEBHOOK_MAX_CONCURRENCY,
    );
    const skipped: string[] = [];
    let started = 0;
    for (const ev of claimed) {
      const target = await this.targets.get(ev.waba_id);
      const busy = this.perEndpoint.get(ev.waba_id) ?? 0;
      const limit = Math.min(target?.maxConcurrency ?? 1, this.config.WEBHOOK_MAX_CONCURRENCY);
      if (!target || busy >= limit) {
        skipped.push(ev.id);
        continue;
      }
      this.perEndpoint.set(ev.waba_id, busy + 1);
      const p = this.runPartition(ev, target).finally(() => {
        this.inflight.delete(p);
        const n = (this.perEndpoint.get(ev.waba_id) ?? 1) - 1;
        if (n <= 0) this.perEndpoint.delete(ev.waba_id);
        else this.perEndpoint.set(ev.waba_id, n);
        // Claim again once half an endpoint's slots are free, not per slot: each claim round scans
        // the partition heads, so fewer, larger rounds.
        if (n <= Math.floor(limit / 2)) this.signal.wake();
      });
      this.inflight.add(p);
      started++;
    }
    await this.outbox.release(skipped, this.owner);
    return started;
  }

  /**
   * Delivers a partition head, then keeps going through the partition in runs of up to RUN events
   * while deliveries succeed. A run's outcomes are recorded together (one statement); if the process
   * dies mid-run the unrecorded ones are sent again later (at-least-once, same order).
   */
  private async runPartition(first: ClaimedEvent, firstTarget: WebhookTarget): Promise<void> {
    let run: ClaimedEvent[] = [first];
    let target: WebhookTarget | undefined = firstTarget;
    while (run.length > 0 && target) {
      const results: (AttemptResult & { id: string })[] = [];
      for (const ev of run) {
        const r = await this.attempt(ev, target);
        results.push(r);
        if (r.state !== 'delivered' || this.stopping) break;
      }
      const more = results.length === run.length && results[results.length - 1].state === 'delivered';
      const now = this.clock.now();
      const next =
        more && !this.stopping
          ? { partitionKey: first.partition_key, now, leaseUntil: this.leaseUntil(now, RUN), limit: RUN }
          : null;
      const rest = run.slice(results.length).map((e) => e.id);
      try {
        run = await this.outbox.finishRun(this.owner, results, next);
      } catch (err) {
        // The leases expire and the events are retried: at-least-once, never lost.
        this.log.error({ err: (err as Error).message }, 'could not record webhook attempts');
        return;
      }
      if (rest.length) await this.outbox.release(rest, this.owner).catch(() => undefined);
      target = run.length ? await this.targets.get(run[0].waba_id) : undefined;
      if (run.length && !target)
        await this.outbox.release(
          run.map((e) => e.id),
          this.owner,
        );
    }
  }

  /** Long enough for `events` attempts that all run into the timeout. */
  private leaseUntil(now: Date, events = 1): Date {
    return new Date(now.getTime() + events * this.config.WEBHOOK_TIMEOUT_MS + 5000);
  }

  /** One attempt and its outcome (recorded by the caller). */
  private async attempt(ev: ClaimedEvent, target: WebhookTarget): Promise<AttemptResult & { id: string }> {
    let statusCode: number | null = null;
    let error: string | null = null;
    const t0 = performance.now();
    try {
      if (!ev.body_enc) throw new Error('event has no body');
      const body = await this.keys.open(ev.waba_id, ev.body_enc, ev.dedupe_key);
      if (body.length > this.config.WEBHOOK_MAX_BODY_BYTES) throw new Error('body exceeds the 3 MB cap');
      const res = await this.http.post(
        target.url,
        body,
        {
          'Content-Type': 'application/json',
          'User-Agent': 'facebookexternalua',
          'X-Hub-Signature-256': `sha256=${this.crypto.hmacSha256Hex(target.appSecret, body)}`,
        },
        target.timeoutMs,
      );
      statusCode = res.status;
      if (res.status < 200 || res.status > 299) error = `HTTP ${res.status}`;
    } catch (err) {
      error = (err as Error).message.slice(0, 500);
    }
    const latencyMs = Math.round(performance.now() - t0);
    const at = this.clock.now();
    const attempt = ev.attempts + 1;
    let state: 'pending' | 'delivered' | 'dead' = error === null ? 'delivered' : 'pending';
    let next = at;
    if (state === 'pending') {
      next = new Date(
        at.getTime() +
          backoffMs(
            attempt,
            this.config.WEBHOOK_BACKOFF_BASE_MS,
            this.config.WEBHOOK_BACKOFF_MAX_MS,
            this.random,
          ),
      );
      if (next.getTime() > new Date(ev.deadline_at).getTime()) state = 'dead';
    }
    if (state === 'dead') this.log.warn({ event: ev.id, attempts: attempt }, 'webhook dead-lettered');
    return { id: ev.id, state, nextAttemptAt: next, at, statusCode, error, latencyMs };
  }
}
