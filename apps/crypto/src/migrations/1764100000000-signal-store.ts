import type { MigrationInterface, QueryRunner } from 'typeorm';
import { dataKeysTableDdl } from '@relay/envelope-crypto';

/**
 * Signal state of the business numbers. Every private key, session record and outbox payload is sealed
 * (AES-256-GCM) with the number's data key; only public keys, ids and timestamps are in the clear.
 */
export class SignalStore1764100000000 implements MigrationInterface {
  name = 'SignalStore1764100000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(dataKeysTableDdl('crypto').up);
    await q.query(`CREATE TABLE "crypto"."identities" (
      "phone_number_id" text PRIMARY KEY,
      "registration_id" integer NOT NULL,
      "identity_public" bytea NOT NULL,
      "identity_private" bytea NOT NULL,
      "next_prekey_id" integer NOT NULL,
      "next_kyber_id" integer NOT NULL,
      "next_signed_id" integer NOT NULL,
      "signed_rotated_at" timestamptz NOT NULL DEFAULT now(),
      "created_at" timestamptz NOT NULL DEFAULT now())`);
    await q.query(`CREATE TABLE "crypto"."signed_prekeys" (
      "phone_number_id" text NOT NULL REFERENCES "crypto"."identities" ON DELETE CASCADE,
      "id" integer NOT NULL,
      "public_key" bytea NOT NULL,
      "signature" bytea NOT NULL,
      "record" bytea NOT NULL,
      "created_at" timestamptz NOT NULL DEFAULT now(),
      "retired_at" timestamptz,
      PRIMARY KEY ("phone_number_id", "id"))`);
    await q.query(`CREATE TABLE "crypto"."prekeys" (
      "phone_number_id" text NOT NULL REFERENCES "crypto"."identities" ON DELETE CASCADE,
      "id" integer NOT NULL,
      "public_key" bytea NOT NULL,
      "record" bytea NOT NULL,
      "issued_at" timestamptz,
      PRIMARY KEY ("phone_number_id", "id"))`);
    // No partial "WHERE issued_at IS NULL" index on purpose: the planner drops a qual implied by a partial
    // index predicate, and then the FOR UPDATE re-check after a concurrent claim does not test it again,
    // so two callers could both claim the same key. The pools are small; the primary key serves.
    await q.query(`CREATE TABLE "crypto"."kyber_prekeys" (
      "phone_number_id" text NOT NULL REFERENCES "crypto"."identities" ON DELETE CASCADE,
      "id" integer NOT NULL,
      "last_resort" boolean NOT NULL,
      "public_key" bytea NOT NULL,
      "signature" bytea NOT NULL,
      "record" bytea NOT NULL,
      "issued_at" timestamptz,
      "created_at" timestamptz NOT NULL DEFAULT now(),
      "retired_at" timestamptz,
      PRIMARY KEY ("phone_number_id", "id"))`);
    await q.query(`CREATE TABLE "crypto"."kyber_triples" (
      "phone_number_id" text NOT NULL,
      "kyber_id" integer NOT NULL,
      "signed_id" integer NOT NULL,
      "base_key" bytea NOT NULL,
      "created_at" timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY ("phone_number_id", "kyber_id", "signed_id", "base_key"),
      FOREIGN KEY ("phone_number_id", "kyber_id") REFERENCES "crypto"."kyber_prekeys" ON DELETE CASCADE)`);
    await q.query(`CREATE TABLE "crypto"."sessions" (
      "phone_number_id" text NOT NULL,
      "wa_id" text NOT NULL,
      "device_id" smallint NOT NULL,
      "state" bytea,
      "updated_at" timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY ("phone_number_id", "wa_id", "device_id"))`);
    await q.query(`CREATE TABLE "crypto"."outbox" (
      "msg_id" text PRIMARY KEY,
      "source" text NOT NULL,
      "phone_number_id" text NOT NULL,
      "wa_id" text NOT NULL,
      "event" text NOT NULL,
      "tokens" jsonb NOT NULL,
      "payload" bytea NOT NULL,
      "created_at" timestamptz NOT NULL DEFAULT now())`);
    await q.query(`CREATE INDEX "outbox_source" ON "crypto"."outbox" ("source")`);
    await q.query(`CREATE INDEX "outbox_created" ON "crypto"."outbox" ("created_at")`);
    await q.query(`CREATE INDEX "outbox_user" ON "crypto"."outbox" ("phone_number_id", "wa_id")`);
  }

  public async down(q: QueryRunner): Promise<void> {
    for (const t of [
      'outbox',
      'sessions',
      'kyber_triples',
      'kyber_prekeys',
      'prekeys',
      'signed_prekeys',
      'identities',
    ]) {
      await q.query(`DROP TABLE "crypto"."${t}"`);
    }
    await q.query(dataKeysTableDdl('crypto').down);
  }
}
