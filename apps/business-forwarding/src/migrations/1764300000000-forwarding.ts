import type { MigrationInterface, QueryRunner } from 'typeorm';

const S = '"business_forwarding"';

/** Tenancy, limits, the webhook outbox and its attempt log, erasure tracking. */
export class Forwarding1764300000000 implements MigrationInterface {
  name = 'Forwarding1764300000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE ${S}.businesses (
      waba_id text PRIMARY KEY,
      name text NOT NULL,
      status text NOT NULL DEFAULT 'active' CHECK (status IN ('active','restricted')),
      messaging_limit integer,
      retention_days integer,
      data_key_wrapped bytea NOT NULL,
      app_secret_enc bytea NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now())`);
    await q.query(`CREATE TABLE ${S}.phone_numbers (
      phone_number_id text PRIMARY KEY,
      waba_id text NOT NULL REFERENCES ${S}.businesses(waba_id) ON DELETE CASCADE,
      display_phone_number text NOT NULL,
      verified_name text NOT NULL,
      data_localization_region text,
      registered boolean NOT NULL DEFAULT false,
      pin_hash text,
      identity_key_check boolean NOT NULL DEFAULT false,
      throughput_mps integer,
      pair_burst integer,
      pair_refill_ms integer,
      created_at timestamptz NOT NULL DEFAULT now())`);
    await q.query(`CREATE INDEX phone_numbers_waba ON ${S}.phone_numbers (waba_id)`);
    await q.query(`CREATE TABLE ${S}.registration_events (
      id bigserial PRIMARY KEY,
      phone_number_id text NOT NULL REFERENCES ${S}.phone_numbers(phone_number_id) ON DELETE CASCADE,
      at timestamptz NOT NULL)`);
    await q.query(
      `CREATE INDEX registration_events_number ON ${S}.registration_events (phone_number_id, at)`,
    );
    await q.query(`CREATE TABLE ${S}.access_tokens (
      id uuid PRIMARY KEY,
      waba_id text NOT NULL REFERENCES ${S}.businesses(waba_id) ON DELETE CASCADE,
      token_hash text NOT NULL UNIQUE,
      label text NOT NULL DEFAULT '',
      expires_at timestamptz,
      revoked_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now())`);
    await q.query(`CREATE TABLE ${S}.webhook_subscriptions (
      waba_id text PRIMARY KEY REFERENCES ${S}.businesses(waba_id) ON DELETE CASCADE,
      callback_url text NOT NULL,
      verify_token_enc bytea NOT NULL,
      max_concurrency integer NOT NULL,
      timeout_ms integer NOT NULL,
      verified_at timestamptz NOT NULL)`);
    await q.query(`CREATE TABLE ${S}.user_windows (
      phone_number_id text NOT NULL,
      wa_id text NOT NULL,
      last_inbound_at timestamptz NOT NULL,
      PRIMARY KEY (phone_number_id, wa_id))`);
    await q.query(`CREATE TABLE ${S}.blocked_users (
      phone_number_id text NOT NULL,
      wa_id text NOT NULL,
      created_at timestamptz NOT NULL,
      PRIMARY KEY (phone_number_id, wa_id))`);
    await q.query(`CREATE TABLE ${S}.outbound_messages (
      wamid text PRIMARY KEY,
      phone_number_id text NOT NULL,
      waba_id text NOT NULL,
      wa_id text NOT NULL,
      biz_opaque_enc bytea,
      last_status text,
      created_at timestamptz NOT NULL)`);
    await q.query(`CREATE INDEX outbound_messages_user ON ${S}.outbound_messages (phone_number_id, wa_id)`);
    await q.query(`CREATE INDEX outbound_messages_created ON ${S}.outbound_messages (created_at)`);
    await q.query(`CREATE TABLE ${S}.tier_contacts (
      waba_id text NOT NULL,
      wa_id text NOT NULL,
      last_at timestamptz NOT NULL,
      PRIMARY KEY (waba_id, wa_id))`);
    await q.query(`CREATE INDEX tier_contacts_recent ON ${S}.tier_contacts (waba_id, last_at)`);
    await q.query(`CREATE TABLE ${S}.rate_windows (
      key text NOT NULL,
      window_start bigint NOT NULL,
      count integer NOT NULL,
      PRIMARY KEY (key, window_start))`);
    await q.query(`CREATE TABLE ${S}.pair_buckets (
      phone_number_id text NOT NULL,
      wa_id text NOT NULL,
      tokens double precision NOT NULL,
      updated_ms bigint NOT NULL,
      PRIMARY KEY (phone_number_id, wa_id))`);
    await q.query(`CREATE TABLE ${S}.abuse_reports (
      report_id uuid PRIMARY KEY,
      phone_number_id text NOT NULL,
      wa_id text NOT NULL,
      kind text NOT NULL,
      at timestamptz NOT NULL)`);
    await q.query(`CREATE INDEX abuse_reports_recent ON ${S}.abuse_reports (phone_number_id, at)`);
    await q.query(`CREATE TABLE ${S}.webhook_events (
      id bigserial PRIMARY KEY,
      dedupe_key text NOT NULL UNIQUE,
      waba_id text NOT NULL,
      phone_number_id text NOT NULL,
      wa_id text NOT NULL,
      partition_key text NOT NULL,
      kind text NOT NULL,
      body_enc bytea,
      state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','dead')),
      attempts integer NOT NULL DEFAULT 0,
      created_at timestamptz NOT NULL,
      deadline_at timestamptz NOT NULL,
      next_attempt_at timestamptz NOT NULL,
      lease_until timestamptz,
      lease_owner text,
      delivered_at timestamptz,
      last_error text)`);
    await q.query(
      `CREATE INDEX webhook_events_due ON ${S}.webhook_events (next_attempt_at, id) WHERE state = 'pending'`,
    );
    await q.query(
      `CREATE INDEX webhook_events_partition ON ${S}.webhook_events (partition_key, id) WHERE state = 'pending'`,
    );
    await q.query(
      `CREATE INDEX webhook_events_dead ON ${S}.webhook_events (waba_id, id) WHERE state = 'dead'`,
    );
    await q.query(`CREATE INDEX webhook_events_user ON ${S}.webhook_events (phone_number_id, wa_id)`);
    await q.query(`CREATE INDEX webhook_events_created ON ${S}.webhook_events (created_at)`);
    await q.query(`CREATE TABLE ${S}.webhook_attempts (
      id bigserial PRIMARY KEY,
      event_id bigint NOT NULL,
      waba_id text NOT NULL,
      attempted_at timestamptz NOT NULL,
      status_code integer,
      error text,
      latency_ms integer NOT NULL)`);
    await q.query(`CREATE INDEX webhook_attempts_waba ON ${S}.webhook_attempts (waba_id, id)`);
    await q.query(`CREATE TABLE ${S}.erasures (
      request_id uuid PRIMARY KEY,
      waba_id text NOT NULL,
      scope text NOT NULL,
      wa_id text,
      requested_at timestamptz NOT NULL)`);
    await q.query(`CREATE TABLE ${S}.erasure_parts (
      request_id uuid NOT NULL REFERENCES ${S}.erasures(request_id) ON DELETE CASCADE,
      service text NOT NULL,
      counts jsonb NOT NULL,
      completed_at timestamptz NOT NULL,
      PRIMARY KEY (request_id, service))`);
  }

  public async down(q: QueryRunner): Promise<void> {
    for (const t of [
      'erasure_parts',
      'erasures',
      'webhook_attempts',
      'webhook_events',
      'abuse_reports',
      'pair_buckets',
      'rate_windows',
      'tier_contacts',
      'outbound_messages',
      'blocked_users',
      'user_windows',
      'webhook_subscriptions',
      'access_tokens',
      'registration_events',
      'phone_numbers',
      'businesses',
    ]) {
      await q.query(`DROP TABLE ${S}.${t}`);
    }
  }
}
