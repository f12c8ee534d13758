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
import { joinBodies } from './webhook-batch';
import { WebhookTargets, type WebhookTarget } from './webhook-targets';

/**
 * Delivers the outbox: claims due partition heads (leased, so replicas never send the same event at
 * once and a killed process's claims return), POSTs them with their signature, and records the attempt.
 * Events waiting for one endpoint go out together, as Meta batches updates: one POST carries up to the
 * subscription's max_events_per_post events (one `entry` each, in partition order), so a backlog
 * drains in a few round trips instead of one per event. Only a 2xx accepts the whole POST; anything
 * else retries every event in it with backoff until its deadline, then dead-letters it. At most
 * max_concurrency POSTs per endpoint are in flight from this process.
 */
/** Partition heads claimed per round at most (each round scans the partition heads once). */
const CLAIM_MAX = 2000;

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
      let full = false;
      try {
        full = await this.claimAndStart();
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'webhook claim failed');
      }
      // Claim again at once only after a round cut short by its limit (more may be due). Otherwise
      // everything due was claimed, and the next round waits for new events, a freed slot or the poll:
      // an immediate empty round after every busy one was half of all claims, each a scan over the
      // pending partitions (measured: ~2 claim rounds per event at low load).
      if (!full) await this.signal.wait(this.config.WEBHOOK_POLL_MS);
    }
  }

  /** Claims and starts what is due; true when the claim was cut short by its limit. */
  private async claimAndStart(): Promise<boolean> {
    const free = this.config.WEBHOOK_WORKERS - this.inflight.size;
    if (free <= 0) return false;
    const now = this.clock.now();
    const limit = Math.min(CLAIM_MAX, free * this.config.WEBHOOK_MAX_EVENTS_PER_POST);
    const claimed = await this.outbox.claim(
      now,
      limit,
      this.leaseUntil(now),
      this.owner,
      this.perEndpoint,
      this.config.WEBHOOK_MAX_CONCURRENCY,
    );
    const byEndpoint = new Map<string, ClaimedEvent[]>();
    for (const ev of claimed) byEndpoint.set(ev.waba_id, [...(byEndpoint.get(ev.waba_id) ?? []), ev]);
    const skipped: string[] = [];
    let started = 0;
    for (const [wabaId, events] of byEndpoint) {
      const target = await this.targets.get(wabaId);
      if (!target) {
        skipped.push(...events.map((e) => e.id));
        continue;
      }
      const limit = Math.min(target.maxConcurrency, this.config.WEBHOOK_MAX_CONCURRENCY);
      // Fewest POSTs: full batches, as many as the endpoint has room for; the rest waits for a slot.
      for (let i = 0; i < events.length; i += target.maxEventsPerPost) {
        const batch = events.slice(i, i + target.maxEventsPerPost);
        const busy = this.perEndpoint.get(wabaId) ?? 0;
        if (busy >= limit || started >= free) {
          skipped.push(...batch.map((e) => e.id));
          continue;
        }
        this.perEndpoint.set(wabaId, busy + 1);
        const p = this.runBatch(batch, target).finally(() => {
          this.inflight.delete(p);
          const n = (this.perEndpoint.get(wabaId) ?? 1) - 1;
          if (n <= 0) this.perEndpoint.delete(wabaId);
          else this.perEndpoint.set(wabaId, n);
          // Claim again once half an endpoint's slots are free, not per slot: each claim round scans
          // the partition heads, so fewer, larger rounds.
          if (n <= Math.floor(limit / 2)) this.signal.wake();
        });
        this.inflight.add(p);
        started++;
      }
    }
    await this.outbox.release(skipped, this.owner);
    return started > 0 && claimed.length >= limit;
  }

  /**
   * Delivers a batch (partition heads, or a run of one partition), then, while a single partition's
   * run goes through, keeps going through that partition a batch at a time. Each POST's outcomes are
   * recorded together with the claim of the partition's next batch (one statement); if the process
   * dies mid-run the unrecorded events are sent again later (at-least-once, same order).
   */
  private async runBatch(first: ClaimedEvent[], firstTarget: WebhookTarget): Promise<void> {
    let batch = first;
    let target: WebhookTarget | undefined = firstTarget;
    while (batch.length > 0 && target) {
      const { results, unsent } = await this.attempt(batch, target);
      const partition = batch.every((e) => e.partition_key === batch[0].partition_key);
      const more = partition && unsent.length === 0 && results.every((r) => r.state === 'delivered');
      const now = this.clock.now();
      const limit = target.maxEventsPerPost;
      const next =
        more && !this.stopping
          ? { partitionKey: batch[0].partition_key, now, leaseUntil: this.leaseUntil(now), limit }
          : null;
      try {
        batch = await this.outbox.finishRun(this.owner, results, next);
      } catch (err) {
        // The leases expire and the events are retried: at-least-once, never lost.
        this.log.error({ err: (err as Error).message }, 'could not record webhook attempts');
        return;
      }
      if (unsent.length) await this.outbox.release(unsent, this.owner).catch(() => undefined);
      target = batch.length ? await this.targets.get(batch[0].waba_id) : undefined;
      if (batch.length && !target)
        await this.outbox.release(
          batch.map((e) => e.id),
          this.owner,
        );
    }
  }

  /**
   * Long enough for one POST that runs into the timeout plus recording it on a busy database (an
   * expired lease means the batch may be sent twice), short enough that a killed process's claims
   * come back quickly (every batch is one POST, so this no longer grows with the batch).
   */
  private leaseUntil(now: Date): Date {
    return new Date(now.getTime() + this.config.WEBHOOK_TIMEOUT_MS + 15_000);
  }

  /**
   * One POST of as many of the batch's events as fit the body cap, and each sent event's outcome
   * (recorded by the caller); `unsent` are the ids that did not fit, to be released.
   */
  private async attempt(
    batch: ClaimedEvent[],
    target: WebhookTarget,
  ): Promise<{ results: (AttemptResult & { id: string })[]; unsent: string[] }> {
    let statusCode: number | null = null;
    let error: string | null = null;
    let sent = batch.slice(0, 1);
    const t0 = performance.now();
    try {
      const bodies = await Promise.all(
        batch.map((ev) => {
          if (!ev.body_enc) throw new Error(`event ${ev.id} has no body`);
          return this.keys.open(ev.waba_id, ev.body_enc, ev.dedupe_key);
        }),
      );
      const { body, count } = joinBodies(bodies, this.config.WEBHOOK_MAX_BODY_BYTES);
      sent = batch.slice(0, count);
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
    const results = sent.map((ev) => ({
      id: ev.id,
      ...this.outcome(ev, at, error),
      at,
      statusCode,
      error,
      latencyMs,
    }));
    return { results, unsent: batch.slice(sent.length).map((e) => e.id) };
  }

  /** Delivered, or retried with backoff until the event's deadline, then dead. */
  private outcome(
    ev: ClaimedEvent,
    at: Date,
    error: string | null,
  ): { state: AttemptResult['state']; nextAttemptAt: Date } {
    if (error === null) return { state: 'delivered', nextAttemptAt: at };
    const attempt = ev.attempts + 1;
    const next = new Date(
      at.getTime() +
        backoffMs(
          attempt,
          this.config.WEBHOOK_BACKOFF_BASE_MS,
          this.config.WEBHOOK_BACKOFF_MAX_MS,
          this.random,
        ),
    );
    if (next.getTime() <= new Date(ev.deadline_at).getTime())
      return { state: 'pending', nextAttemptAt: next };
    this.log.warn({ event: ev.id, attempts: attempt }, 'webhook dead-lettered');
    return { state: 'dead', nextAttemptAt: next };
  }
}
