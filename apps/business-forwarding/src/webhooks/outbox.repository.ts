import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { rows } from '../common/sql';

const S = 'business_forwarding';
const RETURNED = 'w.id, w.dedupe_key, w.partition_key, w.waba_id, w.body_enc, w.attempts, w.deadline_at';

export interface NewEvent {
  dedupe_key: string;
  waba_id: string;
  phone_number_id: string;
  wa_id: string;
  partition_key: string;
  kind: 'message' | 'status';
  body_enc: Buffer;
}

export interface ClaimedEvent {
  id: string;
  partition_key: string;
  dedupe_key: string;
  waba_id: string;
  body_enc: Buffer | null;
  attempts: number;
  deadline_at: Date;
}

export interface AttemptResult {
  state: 'pending' | 'delivered' | 'dead';
  nextAttemptAt: Date;
  at: Date;
  statusCode: number | null;
  error: string | null;
  latencyMs: number;
}

/**
 * The durable webhook outbox. Order: events of one partition (a number's messages, or one message's
 * statuses) go out strictly one after another: only the oldest pending event of a partition can be
 * claimed. Claims are leases, so a crashed process's claims come back after the lease expires.
 */
@Injectable()
export class OutboxRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /** Inserts events; an event already recorded (same dedupe key) is skipped. Returns inserted keys. */
  async insert(em: EntityManager, events: NewEvent[], now: Date, deadline: Date): Promise<string[]> {
    if (events.length === 0) return [];
    // One multi-row insert; ids follow the array order (unnest WITH ORDINALITY + ORDER BY).
    const col = <K extends keyof NewEvent>(k: K) => events.map((e) => e[k]);
    const r = await rows<{ dedupe_key: string }>(
      em,
      `INSERT INTO ${S}.webhook_events (dedupe_key, waba_id, phone_number_id, wa_id, partition_key, kind, body_enc,
         created_at, deadline_at, next_attempt_at)
       SELECT d, w, p, u, k, t, b, $8, $9, $8
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[])
         WITH ORDINALITY AS x(d, w, p, u, k, t, b, n)
       ORDER BY n
       ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key`,
      [
        col('dedupe_key'),
        col('waba_id'),
        col('phone_number_id'),
        col('wa_id'),
        col('partition_key'),
        col('kind'),
        col('body_enc'),
        now,
        deadline,
      ],
    );
    return r.map((x) => x.dedupe_key);
  }

  /**
   * Claims due partition heads of businesses whose endpoint has room (max_concurrency, capped by
   * `cap`, above what this process has in flight there: `inflight`); the caller trims to the room.
   * The heads are found with a skip scan over the partition index (one probe per partition), read
   * lazily up to `limit`, so the cost grows neither with the events waiting behind each head nor, when
   * work is due, with the number of partitions.
   */
  async claim(
    now: Date,
    limit: number,
    leaseUntil: Date,
    owner: string,
    inflight: Map<string, number>,
    cap: number,
  ): Promise<ClaimedEvent[]> {
    return rows<ClaimedEvent>(
      this.ds,
      `WITH RECURSIVE heads AS (
         (SELECT partition_key, id, waba_id, next_attempt_at, lease_until FROM ${S}.webhook_events
          WHERE state = 'pending' ORDER BY partition_key, id LIMIT 1)
         UNION ALL
         SELECT n.* FROM heads h CROSS JOIN LATERAL (
           SELECT partition_key, id, waba_id, next_attempt_at, lease_until FROM ${S}.webhook_events
           WHERE state = 'pending' AND partition_key > h.partition_key ORDER BY partition_key, id LIMIT 1) n),
       cand AS (
         SELECT h.id FROM heads h
         WHERE h.next_attempt_at <= $1 AND (h.lease_until IS NULL OR h.lease_until <= $1)
           AND (SELECT LEAST(s.max_concurrency, $7) FROM ${S}.webhook_subscriptions s WHERE s.waba_id = h.waba_id)
             - COALESCE((SELECT b.n FROM unnest($4::text[], $6::int[]) AS b(waba_id, n) WHERE b.waba_id = h.waba_id), 0) > 0
         LIMIT $2),
       due AS (
         SELECT e.id FROM ${S}.webhook_events e WHERE e.id IN (SELECT id FROM cand)
           AND e.state = 'pending' AND (e.lease_until IS NULL OR e.lease_until <= $1)
         FOR UPDATE SKIP LOCKED)
       UPDATE ${S}.webhook_events w SET lease_until = $3, lease_owner = $5 FROM due WHERE w.id = due.id
       RETURNING ${RETURNED}`,
      [now, limit, leaseUntil, [...inflight.keys()], owner, [...inflight.values()], cap],
    );
  }

  async release(ids: string[], owner: string): Promise<void> {
    if (ids.length === 0) return;
    await this.ds.query(
      `UPDATE ${S}.webhook_events SET lease_until = NULL, lease_owner = NULL WHERE id = ANY($1::bigint[]) AND lease_owner = $2`,
      [ids, owner],
    );
  }

  /**
   * Records a run's attempts and outcomes (a delivered event drops its body) and, when `more` is set,
   * claims the next events of the same partition (up to `limit`, as long as they are due and free),
   * all in one statement: a runner works through a partition with one round trip per run. The next
   * rows are locked without SKIP LOCKED, so a run can never take an event out of order.
   */
  async finishRun(
    owner: string,
    results: (AttemptResult & { id: string })[],
    next: { partitionKey: string; now: Date; leaseUntil: Date; limit: number } | null,
  ): Promise<ClaimedEvent[]> {
    const col = <K extends keyof (typeof results)[number]>(k: K) => results.map((r) => r[k]);
    return rows<ClaimedEvent>(
      this.ds,
      `WITH r AS (
         SELECT * FROM unnest($2::bigint[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::int[], $7::text[], $8::int[])
           AS r(id, state, next_at, at, status_code, error, latency)),
       u AS (
         UPDATE ${S}.webhook_events e SET state = r.state, attempts = e.attempts + 1, next_attempt_at = r.next_at,
           lease_until = NULL, lease_owner = NULL, last_error = r.error,
           delivered_at = CASE WHEN r.state = 'delivered' THEN r.at ELSE NULL END,
           body_enc = CASE WHEN r.state = 'delivered' THEN NULL ELSE e.body_enc END
         FROM r WHERE e.id = r.id AND e.lease_owner = $1 RETURNING e.id, e.waba_id),
       a AS (
         INSERT INTO ${S}.webhook_attempts (event_id, waba_id, attempted_at, status_code, error, latency_ms)
         SELECT u.id, u.waba_id, r.at, r.status_code, r.error, r.latency FROM u JOIN r ON r.id = u.id ORDER BY u.id),
       n AS (
         SELECT id, next_attempt_at, lease_until FROM ${S}.webhook_events
         WHERE $9::text IS NOT NULL AND partition_key = $9 AND state = 'pending' AND NOT (id = ANY($2::bigint[]))
           AND (SELECT count(*) FROM u) = cardinality($2::bigint[])
         ORDER BY id LIMIT $12 FOR UPDATE),
       stop AS (
         SELECT COALESCE(min(id), 9223372036854775807) AS id FROM n
         WHERE next_attempt_at > $10 OR (lease_until IS NOT NULL AND lease_until > $10))
       UPDATE ${S}.webhook_events w SET lease_until = $11, lease_owner = $1 FROM n
       WHERE w.id = n.id AND n.id < (SELECT id FROM stop)
       RETURNING ${RETURNED}`,
      [
        owner,
        col('id'),
        col('state'),
        col('nextAttemptAt'),
        col('at'),
        col('statusCode'),
        col('error'),
        col('latencyMs'),
        next?.partitionKey ?? null,
        next?.now ?? new Date(0),
        next?.leaseUntil ?? new Date(0),
        next?.limit ?? 0,
      ],
    );
  }

  /** The user who sent this number the message, or null when it never received it. */
  async inboundSender(phoneNumberId: string, wamid: string): Promise<string | null> {
    const r = await rows<{ wa_id: string }>(
      this.ds,
      `SELECT wa_id FROM ${S}.webhook_events WHERE dedupe_key = $1 AND phone_number_id = $2`,
      [`m:${wamid}`, phoneNumberId],
    );
    return r[0]?.wa_id ?? null;
  }

  async attempts(wabaId: string, limit: number, beforeId?: string) {
    return rows(
      this.ds,
      `SELECT a.id, a.event_id, e.dedupe_key AS event_key, a.attempted_at, a.status_code, a.error, a.latency_ms
       FROM ${S}.webhook_attempts a LEFT JOIN ${S}.webhook_events e ON e.id = a.event_id
       WHERE a.waba_id = $1 AND ($2::bigint IS NULL OR a.id < $2) ORDER BY a.id DESC LIMIT $3`,
      [wabaId, beforeId ?? null, limit],
    );
  }

  async deadLetters(wabaId: string, limit: number, afterId?: string) {
    return rows(
      this.ds,
      `SELECT id, dedupe_key AS event_key, kind, phone_number_id, attempts, created_at, deadline_at, last_error
       FROM ${S}.webhook_events WHERE waba_id = $1 AND state = 'dead' AND ($2::bigint IS NULL OR id > $2)
       ORDER BY id LIMIT $3`,
      [wabaId, afterId ?? null, limit],
    );
  }

  /** Puts dead letters back in the queue with a fresh retry window. */
  async replay(wabaId: string, ids: string[] | null, now: Date, deadline: Date): Promise<number> {
    const r = await rows(
      this.ds,
      `UPDATE ${S}.webhook_events SET state = 'pending', next_attempt_at = $3, deadline_at = $4, last_error = NULL
       WHERE waba_id = $1 AND state = 'dead' AND body_enc IS NOT NULL AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))
       RETURNING id`,
      [wabaId, ids, now, deadline],
    );
    return r.length;
  }

  async stats(wabaId: string): Promise<Record<string, number>> {
    const r = await rows<{ state: string; n: number }>(
      this.ds,
      `SELECT state, count(*)::int AS n FROM ${S}.webhook_events WHERE waba_id = $1 GROUP BY state`,
      [wabaId],
    );
    return Object.fromEntries(r.map((x) => [x.state, x.n]));
  }

  /** Events past their window that no process tried (e.g. no subscription) become dead letters. */
  async expire(now: Date): Promise<number> {
    const r = await rows(
      this.ds,
      `UPDATE ${S}.webhook_events SET state = 'dead', last_error = COALESCE(last_error, 'retry window ended')
       WHERE state = 'pending' AND deadline_at < $1 AND (lease_until IS NULL OR lease_until < $1) RETURNING id`,
      [now],
    );
    return r.length;
  }

  /** Retention: every event (whatever its state) and attempt older than the cutoff is removed. */
  async purge(before: Date): Promise<void> {
    await this.ds.query(`DELETE FROM ${S}.webhook_events WHERE created_at < $1`, [before]);
    await this.ds.query(`DELETE FROM ${S}.webhook_attempts WHERE attempted_at < $1`, [before]);
  }
}
