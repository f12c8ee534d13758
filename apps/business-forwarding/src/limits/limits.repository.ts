import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { rows } from '../common/sql';

const S = 'business_forwarding';

type Queryable = Pick<DataSource | EntityManager, 'query'>;

/** One key for a (number or business, user) pair; ids are digits, so the separator cannot collide. */
export const pairKey = (a: string, b: string): string => `${a}/${b}`;

/**
 * Limit state lives in Postgres so every replica shares it. Each statement serves a whole batch of
 * sends and runs in the batch's transaction: counters and buckets are atomic upserts, never
 * read-then-write from the application; the messaging-limit tier, which must count before it admits,
 * is serialized per business by an advisory lock.
 */
@Injectable()
export class LimitsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  /**
   * The recipient checks and the throughput window of a batch in one statement. For each send, in the
   * order given: is the user blocked, is the 24-hour window open (last message at or after `windowFrom`).
   * Every send that passes those and its number's quality check counts in its number's one-second
   * window; `tpTotal` is that window's count afterwards, so the k-th of a number's n passing sends is
   * the (tpTotal - n + k)-th of its second, exactly as if they had been counted one by one. Window rows
   * are locked in key order (no deadlock between batches).
   */
  async checkRecipientsAndCount(
    db: Queryable,
    sends: { phoneNumberId: string; waId: string; qualityBlocked: boolean }[],
    windowFrom: Date,
    windowStart: number,
  ): Promise<{ blocked: boolean; inWindow: boolean; tpTotal: number | null }[]> {
    const r = await rows<{ blocked: boolean; in_window: boolean; tp_total: number | null }>(
      db,
      `WITH st AS (
         SELECT u.i, u.p, u.qblocked,
           EXISTS (SELECT 1 FROM ${S}.blocked_users b WHERE b.phone_number_id = u.p AND b.wa_id = u.w) AS blocked,
           COALESCE((SELECT w.last_inbound_at >= $4 FROM ${S}.user_windows w
                     WHERE w.phone_number_id = u.p AND w.wa_id = u.w), false) AS in_window
         FROM unnest($1::text[], $2::text[], $3::bool[]) WITH ORDINALITY AS u(p, w, qblocked, i)),
       tp AS (
         INSERT INTO ${S}.rate_windows AS r (key, window_start, count)
         SELECT 'tp:' || st.p, $5, count(*) FROM st
         WHERE NOT st.blocked AND st.in_window AND NOT st.qblocked GROUP BY st.p ORDER BY st.p
         ON CONFLICT (key, window_start) DO UPDATE SET count = r.count + EXCLUDED.count
         RETURNING key, count)
       SELECT st.blocked, st.in_window, tp.count AS tp_total
       FROM st LEFT JOIN tp ON tp.key = 'tp:' || st.p ORDER BY st.i`,
      [
        sends.map((x) => x.phoneNumberId),
        sends.map((x) => x.waId),
        sends.map((x) => x.qualityBlocked),
        windowFrom,
        windowStart,
      ],
    );
    return r.map((x) => ({ blocked: x.blocked, inWindow: x.in_window, tpTotal: x.tp_total }));
  }

  /**
   * Takes one pair token for each distinct (number, user) given (at most once per pair per call) and
   * returns the pairs that got one. The bucket refills 1 per refillMs up to burst; a new pair starts
   * full. One atomic upsert, rows locked in key order.
   */
  async takePairTokens(
    db: Queryable,
    takes: { phoneNumberId: string; waId: string; burst: number; refillMs: number }[],
    nowMs: number,
  ): Promise<Set<string>> {
    const sorted = [...takes].sort((a, b) =>
      pairKey(a.phoneNumberId, a.waId) < pairKey(b.phoneNumberId, b.waId) ? -1 : 1,
    );
    // EXCLUDED.tokens + 1 is the burst; the refill period is looked up in the request rows.
    const available = `LEAST(EXCLUDED.tokens + 1, b.tokens + GREATEST(0, EXCLUDED.updated_ms - b.updated_ms)::float8
      / (SELECT r.refill FROM req r WHERE r.p = b.phone_number_id AND r.w = b.wa_id))`;
    const r = await rows<{ phone_number_id: string; wa_id: string }>(
      db,
      `WITH req AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) AS u(p, w, burst, refill))
       INSERT INTO ${S}.pair_buckets AS b (phone_number_id, wa_id, tokens, updated_ms)
       SELECT r.p, r.w, r.burst - 1, $5 FROM req r ORDER BY r.p, r.w
       ON CONFLICT (phone_number_id, wa_id) DO UPDATE
         SET tokens = ${available} - 1, updated_ms = EXCLUDED.updated_ms
         WHERE ${available} >= 1
       RETURNING phone_number_id, wa_id`,
      [
        sorted.map((t) => t.phoneNumberId),
        sorted.map((t) => t.waId),
        sorted.map((t) => t.burst),
        sorted.map((t) => t.refillMs),
        nowMs,
      ],
    );
    return new Set(r.map((x) => pairKey(x.phone_number_id, x.wa_id)));
  }

  /**
   * Serializes messaging-limit decisions per business until the transaction ends, across batches and
   * replicas, so two of them cannot both admit the last free user. Taken in waba order.
   */
  async lockTiers(db: Queryable, wabaIds: string[]): Promise<void> {
    await db.query(
      `SELECT count(pg_advisory_xact_lock(hashtextextended('${S}.tier:' || s.b, 0)))
       FROM (SELECT b FROM unnest($1::text[]) AS u(b) ORDER BY b) s`,
      [[...new Set(wabaIds)].sort()],
    );
  }

  /**
   * For each business: how many users it contacted since `since`, and which of `candidates` are
   * among them (those are free to message again).
   */
  async tierState(
    db: Queryable,
    wabaIds: string[],
    candidates: { wabaId: string; waId: string }[],
    since: Date,
  ): Promise<{ recent: Map<string, number>; known: Set<string> }> {
    const r = await rows<{ waba_id: string; wa_id: string | null; n: number | null }>(
      db,
      `SELECT u.b AS waba_id, NULL::text AS wa_id,
              (SELECT count(*)::int FROM ${S}.tier_contacts t WHERE t.waba_id = u.b AND t.last_at > $2) AS n
       FROM unnest($1::text[]) AS u(b)
       UNION ALL
       SELECT t.waba_id, t.wa_id, NULL FROM ${S}.tier_contacts t
       JOIN (SELECT DISTINCT * FROM unnest($3::text[], $4::text[]) AS c(b, w)) c ON t.waba_id = c.b AND t.wa_id = c.w
       WHERE t.last_at > $2`,
      [[...new Set(wabaIds)], since, candidates.map((c) => c.wabaId), candidates.map((c) => c.waId)],
    );
    const recent = new Map<string, number>();
    const known = new Set<string>();
    for (const x of r) {
      if (x.wa_id === null) recent.set(x.waba_id, x.n ?? 0);
      else known.add(pairKey(x.waba_id, x.wa_id));
    }
    return { recent, known };
  }

  /** Marks users as contacted now (within the messaging-limit lock). */
  async touchTier(db: Queryable, contacts: { wabaId: string; waId: string }[], now: Date): Promise<void> {
    const distinct = [...new Map(contacts.map((c) => [pairKey(c.wabaId, c.waId), c])).entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([, c]) => c);
    await db.query(
      `INSERT INTO ${S}.tier_contacts (waba_id, wa_id, last_at)
       SELECT u.b, u.w, $3 FROM unnest($1::text[], $2::text[]) AS u(b, w)
       ON CONFLICT (waba_id, wa_id) DO UPDATE SET last_at = EXCLUDED.last_at`,
      [distinct.map((c) => c.wabaId), distinct.map((c) => c.waId), now],
    );
  }

  async qualityScore(phoneNumberId: string, since: Date): Promise<number> {
    const [r] = await rows<{ score: number }>(
      this.ds,
      `SELECT COALESCE(SUM(CASE WHEN kind = 'unblock' THEN -1 ELSE 1 END), 0)::int AS score
       FROM ${S}.abuse_reports WHERE phone_number_id = $1 AND at > $2`,
      [phoneNumberId, since],
    );
    return Math.max(0, r.score);
  }

  async insertAbuseReport(r: {
    report_id: string;
    phone_number_id: string;
    wa_id: string;
    kind: string;
    at: string;
  }): Promise<void> {
    await this.ds.query(
      `INSERT INTO ${S}.abuse_reports (report_id, phone_number_id, wa_id, kind, at) VALUES ($1,$2,$3,$4,$5)
       ON CONFLICT DO NOTHING`,
      [r.report_id, r.phone_number_id, r.wa_id, r.kind, r.at],
    );
  }

  /** Drops limit state nobody can need any more (old windows, idle buckets). */
  async prune(nowMs: number): Promise<void> {
    await this.ds.query(`DELETE FROM ${S}.rate_windows WHERE window_start < $1`, [
      Math.floor(nowMs / 1000) - 60,
    ]);
    await this.ds.query(`DELETE FROM ${S}.pair_buckets WHERE updated_ms < $1`, [nowMs - 24 * 3600_000]);
    await this.ds.query(`DELETE FROM ${S}.tier_contacts WHERE last_at < $1`, [
      new Date(nowMs - 24 * 3600_000),
    ]);
  }
}
