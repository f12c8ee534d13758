import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { rows } from '../common/sql';

const S = 'business_forwarding';

export interface BusinessRow {
  waba_id: string;
  name: string;
  status: 'active' | 'restricted';
  messaging_limit: number | null;
  retention_days: number | null;
  data_key_wrapped: Buffer;
  app_secret_enc: Buffer;
  created_at: Date;
}

export interface NumberRow {
  phone_number_id: string;
  waba_id: string;
  display_phone_number: string;
  verified_name: string;
  data_localization_region: string | null;
  registered: boolean;
  pin_hash: string | null;
  identity_key_check: boolean;
  throughput_mps: number | null;
  pair_burst: number | null;
  pair_refill_ms: number | null;
  /** Webhook bodies are also published on integrator.webhook (for integrators who consume NATS). */
  nats_delivery: boolean;
  created_at: Date;
}

export interface TokenRow {
  id: string;
  waba_id: string;
  label: string;
  expires_at: Date | null;
  revoked_at: Date | null;
  created_at: Date;
}

export interface SubscriptionRow {
  waba_id: string;
  callback_url: string;
  verify_token_enc: Buffer;
  max_concurrency: number;
  /** Null: the WEBHOOK_MAX_EVENTS_PER_POST default. */
  max_events_per_post: number | null;
  timeout_ms: number;
  verified_at: Date;
}

/** Businesses, their numbers, tokens and webhook subscriptions (this service's own tables only). */
@Injectable()
export class TenantRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async insertBusiness(b: Omit<BusinessRow, 'created_at' | 'status'>): Promise<boolean> {
    const r = await rows(
      this.ds,
      `INSERT INTO ${S}.businesses (waba_id, name, messaging_limit, retention_days, data_key_wrapped, app_secret_enc)
       VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING RETURNING waba_id`,
      [b.waba_id, b.name, b.messaging_limit, b.retention_days, b.data_key_wrapped, b.app_secret_enc],
    );
    return r.length === 1;
  }

  async business(wabaId: string): Promise<BusinessRow | undefined> {
    const [r] = await this.ds.query(`SELECT * FROM ${S}.businesses WHERE waba_id = $1`, [wabaId]);
    return r as BusinessRow | undefined;
  }

  async listBusinesses(): Promise<BusinessRow[]> {
    return this.ds.query(`SELECT * FROM ${S}.businesses ORDER BY waba_id`);
  }

  async updateBusiness(
    wabaId: string,
    patch: Partial<
      Pick<BusinessRow, 'name' | 'status' | 'messaging_limit' | 'retention_days' | 'app_secret_enc'>
    >,
  ): Promise<boolean> {
    return this.update('businesses', 'waba_id', wabaId, patch);
  }

  async deleteBusiness(wabaId: string): Promise<void> {
    await this.ds.query(`DELETE FROM ${S}.businesses WHERE waba_id = $1`, [wabaId]);
  }

  async insertNumber(
    n: Pick<NumberRow, 'phone_number_id' | 'waba_id' | 'display_phone_number' | 'verified_name'> & {
      data_localization_region: string | null;
    },
  ): Promise<boolean> {
    const r = await rows(
      this.ds,
      `INSERT INTO ${S}.phone_numbers (phone_number_id, waba_id, display_phone_number, verified_name, data_localization_region)
       VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING RETURNING phone_number_id`,
      [n.phone_number_id, n.waba_id, n.display_phone_number, n.verified_name, n.data_localization_region],
    );
    return r.length === 1;
  }

  async number(phoneNumberId: string): Promise<NumberRow | undefined> {
    const [r] = await this.ds.query(`SELECT * FROM ${S}.phone_numbers WHERE phone_number_id = $1`, [
      phoneNumberId,
    ]);
    return r as NumberRow | undefined;
  }

  async numbersOf(wabaId: string): Promise<NumberRow[]> {
    return this.ds.query(`SELECT * FROM ${S}.phone_numbers WHERE waba_id = $1 ORDER BY phone_number_id`, [
      wabaId,
    ]);
  }

  async updateNumber(
    phoneNumberId: string,
    patch: Partial<Omit<NumberRow, 'phone_number_id' | 'waba_id' | 'created_at'>>,
  ): Promise<boolean> {
    return this.update('phone_numbers', 'phone_number_id', phoneNumberId, patch);
  }

  /** Records a register/deregister call and returns how many happened since `since` (this one included). */
  async recordRegistration(phoneNumberId: string, at: Date, since: Date): Promise<number> {
    const [r] = await this.ds.query(
      `WITH ins AS (INSERT INTO ${S}.registration_events (phone_number_id, at) VALUES ($1,$2))
       SELECT count(*)::int + 1 AS n FROM ${S}.registration_events WHERE phone_number_id = $1 AND at > $3`,
      [phoneNumberId, at, since],
    );
    return (r as { n: number }).n;
  }

  async insertToken(t: Omit<TokenRow, 'created_at' | 'revoked_at'> & { token_hash: string }): Promise<void> {
    await this.ds.query(
      `INSERT INTO ${S}.access_tokens (id, waba_id, token_hash, label, expires_at) VALUES ($1,$2,$3,$4,$5)`,
      [t.id, t.waba_id, t.token_hash, t.label, t.expires_at],
    );
  }

  async tokenByHash(hash: string): Promise<TokenRow | undefined> {
    const [r] = await this.ds.query(
      `SELECT id, waba_id, label, expires_at, revoked_at, created_at FROM ${S}.access_tokens WHERE token_hash = $1`,
      [hash],
    );
    return r as TokenRow | undefined;
  }

  async tokensOf(wabaId: string): Promise<TokenRow[]> {
    return this.ds.query(
      `SELECT id, waba_id, label, expires_at, revoked_at, created_at FROM ${S}.access_tokens
       WHERE waba_id = $1 ORDER BY created_at`,
      [wabaId],
    );
  }

  async updateToken(
    wabaId: string,
    id: string,
    patch: Partial<Pick<TokenRow, 'expires_at' | 'revoked_at'>>,
  ): Promise<boolean> {
    const sets = Object.keys(patch).map((k, i) => `"${k}" = $${i + 3}`);
    const r = await rows(
      this.ds,
      `UPDATE ${S}.access_tokens SET ${sets.join(', ')} WHERE waba_id = $1 AND id = $2 RETURNING id`,
      [wabaId, id, ...Object.values(patch)],
    );
    return r.length === 1;
  }

  async upsertSubscription(s: SubscriptionRow): Promise<void> {
    await this.ds.query(
      `INSERT INTO ${S}.webhook_subscriptions (waba_id, callback_url, verify_token_enc, max_concurrency, timeout_ms,
         verified_at, max_events_per_post)
       VALUES ($1,$2,$3,$4,$5,$6,$7)
       ON CONFLICT (waba_id) DO UPDATE SET callback_url = $2, verify_token_enc = $3, max_concurrency = $4,
         timeout_ms = $5, verified_at = $6, max_events_per_post = $7`,
      [
        s.waba_id,
        s.callback_url,
        s.verify_token_enc,
        s.max_concurrency,
        s.timeout_ms,
        s.verified_at,
        s.max_events_per_post,
      ],
    );
  }

  async subscription(wabaId: string): Promise<SubscriptionRow | undefined> {
    const [r] = await this.ds.query(`SELECT * FROM ${S}.webhook_subscriptions WHERE waba_id = $1`, [wabaId]);
    return r as SubscriptionRow | undefined;
  }

  async deleteSubscription(wabaId: string): Promise<boolean> {
    const r = await rows(
      this.ds,
      `DELETE FROM ${S}.webhook_subscriptions WHERE waba_id = $1 RETURNING waba_id`,
      [wabaId],
    );
    return r.length === 1;
  }

  private async update(table: string, key: string, id: string, patch: object): Promise<boolean> {
    const entries = Object.entries(patch).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return true;
    const sets = entries.map(([k], i) => `"${k}" = $${i + 2}`);
    const r = await rows(
      this.ds,
      `UPDATE ${S}.${table} SET ${sets.join(', ')} WHERE ${key} = $1 RETURNING ${key}`,
      [id, ...entries.map(([, v]) => v)],
    );
    return r.length === 1;
  }
}
