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

  /** Counts one message in the current one-second window; returns the count including it. */
  async countInWindow(key: string, windowStart: number): Promise<number> {
    const [r] = await rows<{ count: number }>(
      this.ds,
      `INSERT INTO ${S}.rate_windows (key, window_start, count) VALUES ($1, $2, 1)
       ON CONFLICT (key, window_start) DO UPDATE SET count = ${S}.rate_windows.count + 1 RETURNING count`,
      [key, windowStart],
    );
    return r.count;
  }

  /** Token bucket per (number, user): takes one token if there is one; false means rate-limited. */
  async takePairToken(
    phoneNumberId: string,
    waId: string,
    burst: number,
    refillMs: number,
    nowMs: number,
  ): Promise<boolean> {
    const r = await rows(
      this.ds,
      `INSERT INTO ${S}.pair_buckets AS b (phone_number_id, wa_id, tokens, updated_ms) VALUES ($1, $2, $3 - 1, $5)
       ON CONFLICT (phone_number_id, wa_id) DO UPDATE
         SET tokens = LEAST($3::float8, b.tokens + GREATEST(0, $5 - b.updated_ms)::float8 / $4) - 1, updated_ms = $5
         WHERE LEAST($3::float8, b.tokens + GREATEST(0, $5 - b.updated_ms)::float8 / $4) >= 1
       RETURNING tokens`,
      [phoneNumberId, waId, burst, refillMs, nowMs],
    );
    return r.length === 1;
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
