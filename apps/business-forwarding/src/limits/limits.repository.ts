import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { rows } from '../common/sql';

const S = 'business_forwarding';

/**
 * Limit state lives in Postgres so every replica shares it: each check is one atomic statement
 * (an upsert that counts or takes a token), never read-then-write from the application.
 */
@Injectable()
export class LimitsRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async recipientState(
    phoneNumberId: string,
    waId: string,
  ): Promise<{ blocked: boolean; lastInbound: Date | null }> {
    const [r] = await rows<{ blocked: boolean; last_inbound_at: Date | null }>(
      this.ds,
      `SELECT EXISTS (SELECT 1 FROM ${S}.blocked_users WHERE phone_number_id = $1 AND wa_id = $2) AS blocked,
              (SELECT last_inbound_at FROM ${S}.user_windows WHERE phone_number_id = $1 AND wa_id = $2) AS last_inbound_at`,
      [phoneNumberId, waId],
    );
    return { blocked: r.blocked, lastInbound: r.last_inbound_at ? new Date(r.last_inbound_at) : null };
  }

  /**
   * Throughput window and pair bucket in one round trip: counts the message in its one-second window
   * and, only if that is within `mps`, takes a pair token. Both are atomic upserts.
   */
  async takeSendQuota(
    phoneNumberId: string,
    waId: string,
    mps: number,
    burst: number,
    refillMs: number,
    nowMs: number,
  ): Promise<{ throughput: boolean; pair: boolean }> {
    const [r] = await rows<{ count: number; pair: boolean }>(
      this.ds,
      `WITH tp AS (
         INSERT INTO ${S}.rate_windows (key, window_start, count) VALUES ('tp:' || $1, $6, 1)
         ON CONFLICT (key, window_start) DO UPDATE SET count = ${S}.rate_windows.count + 1 RETURNING count),
       pair AS (
         INSERT INTO ${S}.pair_buckets AS b (phone_number_id, wa_id, tokens, updated_ms)
         SELECT $1, $2, $4 - 1, $7 WHERE (SELECT count FROM tp) <= $3
         ON CONFLICT (phone_number_id, wa_id) DO UPDATE
           SET tokens = LEAST($4::float8, b.tokens + GREATEST(0, $7 - b.updated_ms)::float8 / $5) - 1, updated_ms = $7
           WHERE LEAST($4::float8, b.tokens + GREATEST(0, $7 - b.updated_ms)::float8 / $5) >= 1
         RETURNING 1)
       SELECT (SELECT count FROM tp) AS count, EXISTS (SELECT 1 FROM pair) AS pair`,
      [phoneNumberId, waId, mps, burst, refillMs, Math.floor(nowMs / 1000), nowMs],
    );
    return { throughput: r.count <= mps, pair: r.pair };
  }

  /**
   * Messaging-limit tier: a user already contacted in the rolling 24 h is free; a new one is admitted
   * only while fewer than `limit` users were contacted.
   */
  async admitToTier(wabaId: string, waId: string, now: Date, since: Date, limit: number): Promise<boolean> {
    const [r] = await rows<{ ok: boolean }>(
      this.ds,
      `WITH known AS (
         UPDATE ${S}.tier_contacts SET last_at = $3 WHERE waba_id = $1 AND wa_id = $2 AND last_at > $4 RETURNING 1),
       recent AS (
         SELECT count(*)::int AS n FROM ${S}.tier_contacts WHERE waba_id = $1 AND last_at > $4 AND NOT EXISTS (SELECT 1 FROM known)),
       ins AS (
         INSERT INTO ${S}.tier_contacts (waba_id, wa_id, last_at)
         SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM known) AND (SELECT n FROM recent) < $5
         ON CONFLICT (waba_id, wa_id) DO UPDATE SET last_at = $3 RETURNING 1)
       SELECT EXISTS (SELECT 1 FROM known) OR EXISTS (SELECT 1 FROM ins) AS ok`,
      [wabaId, waId, now, since, limit],
    );
    return r.ok;
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
