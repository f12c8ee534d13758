import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Devices1764100000000 implements MigrationInterface {
  name = 'Devices1764100000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE "gateway"."verification_sessions" (
      "id" uuid PRIMARY KEY, "wa_id" text NOT NULL, "code_hash" bytea NOT NULL,
      "attempts" integer NOT NULL DEFAULT 0, "expires_at" timestamptz NOT NULL,
      "verified_at" timestamptz, "used_at" timestamptz)`);
    await q.query(
      `CREATE INDEX "IDX_gateway_verification_expires" ON "gateway"."verification_sessions" ("expires_at")`,
    );
    await q.query(`CREATE TABLE "gateway"."devices" (
      "wa_id" text NOT NULL, "device_id" smallint NOT NULL CHECK ("device_id" BETWEEN 1 AND 127),
      "name" text, "registration_id" integer NOT NULL, "secret_hash" bytea NOT NULL,
      "identity_key" bytea NOT NULL,
      "signed_prekey_id" integer NOT NULL, "signed_prekey" bytea NOT NULL, "signed_prekey_signature" bytea NOT NULL,
      "kyber_last_resort_id" integer NOT NULL, "kyber_last_resort_key" bytea NOT NULL,
      "kyber_last_resort_signature" bytea NOT NULL,
      "created_at" timestamptz NOT NULL DEFAULT now(), "last_seen_at" timestamptz,
      CONSTRAINT "PK_gateway_devices" PRIMARY KEY ("wa_id", "device_id"))`);
    for (const [table, extra] of [
      ['device_prekeys', ''],
      ['device_kyber_prekeys', ', "signature" bytea NOT NULL'],
    ]) {
      await q.query(`CREATE TABLE "gateway"."${table}" (
        "wa_id" text NOT NULL, "device_id" smallint NOT NULL, "key_id" integer NOT NULL,
        "public_key" bytea NOT NULL${extra},
        CONSTRAINT "PK_gateway_${table}" PRIMARY KEY ("wa_id", "device_id", "key_id"),
        CONSTRAINT "FK_gateway_${table}_device" FOREIGN KEY ("wa_id", "device_id")
          REFERENCES "gateway"."devices" ("wa_id", "device_id") ON DELETE CASCADE)`);
    }
    await q.query(`CREATE TABLE "gateway"."business_blocks" (
      "wa_id" text NOT NULL, "phone_number_id" text NOT NULL, "blocked_at" timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT "PK_gateway_business_blocks" PRIMARY KEY ("wa_id", "phone_number_id"))`);
    await q.query(
      `CREATE INDEX "IDX_gateway_blocks_business" ON "gateway"."business_blocks" ("phone_number_id")`,
    );
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "gateway"."business_blocks"`);
    await q.query(`DROP TABLE "gateway"."device_kyber_prekeys"`);
    await q.query(`DROP TABLE "gateway"."device_prekeys"`);
    await q.query(`DROP TABLE "gateway"."devices"`);
    await q.query(`DROP TABLE "gateway"."verification_sessions"`);
  }
}
