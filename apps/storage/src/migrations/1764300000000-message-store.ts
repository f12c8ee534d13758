import type { MigrationInterface, QueryRunner } from 'typeorm';
import { dataKeysTableDdl } from '@relay/envelope-crypto';

/**
 * The message store. Every database of the service (the default one and each Local Storage region) gets
 * the same tables; `numbers` is only filled in the default database (routing: number -> region).
 * Columns named `*_sealed` hold AES-256-GCM blobs under the business's data key; the rest is the routing
 * metadata listed in docs/storage.md.
 */
const TABLES: [string, string][] = [
  [
    'numbers',
    `CREATE TABLE "storage"."numbers" ("phone_number_id" text PRIMARY KEY, "waba_id" text NOT NULL, "region" text, "retention_days" integer NOT NULL, "registered" boolean NOT NULL, "registered_at" timestamptz NOT NULL, "deregistered_at" timestamptz)`,
  ],
  [
    'messages',
    `CREATE TABLE "storage"."messages" ("wamid" text PRIMARY KEY, "phone_number_id" text NOT NULL, "direction" text NOT NULL CHECK ("direction" IN ('in','out')), "wa_id" text NOT NULL, "created_at" timestamptz NOT NULL, "expires_at" timestamptz NOT NULL, "body_sealed" bytea NOT NULL)`,
  ],
  [
    'message_statuses',
    `CREATE TABLE "storage"."message_statuses" ("wamid" text NOT NULL, "status" text NOT NULL, "device_id" smallint NOT NULL DEFAULT 0, "phone_number_id" text NOT NULL, "wa_id" text NOT NULL, "at" timestamptz NOT NULL, "expires_at" timestamptz NOT NULL, "error_code" integer, "errors_sealed" bytea, PRIMARY KEY ("wamid", "status", "device_id"))`,
  ],
  [
    'contacts',
    `CREATE TABLE "storage"."contacts" ("phone_number_id" text NOT NULL, "wa_id" text NOT NULL, "profile_name_sealed" bytea, "last_status_at" timestamptz NOT NULL, PRIMARY KEY ("phone_number_id", "wa_id"))`,
  ],
  [
    'pending',
    `CREATE TABLE "storage"."pending" ("wa_id" text NOT NULL, "device_id" smallint NOT NULL, "seq" bigint NOT NULL, "wamid" text NOT NULL, "phone_number_id" text NOT NULL, "type" text NOT NULL, "created_at" timestamptz NOT NULL, "expires_at" timestamptz NOT NULL, "ciphertext_sealed" bytea NOT NULL, PRIMARY KEY ("wa_id", "device_id", "seq"), UNIQUE ("wa_id", "device_id", "wamid"))`,
  ],
  [
    'device_counters',
    `CREATE TABLE "storage"."device_counters" ("wa_id" text NOT NULL, "device_id" smallint NOT NULL, "last_seq" bigint NOT NULL, "updated_at" timestamptz NOT NULL, PRIMARY KEY ("wa_id", "device_id"))`,
  ],
  [
    'status_marks',
    `CREATE TABLE "storage"."status_marks" ("wamid" text NOT NULL, "status" text NOT NULL, "created_at" timestamptz NOT NULL, PRIMARY KEY ("wamid", "status"))`,
  ],
  [
    'audit_log',
    `CREATE TABLE "storage"."audit_log" ("id" bigserial PRIMARY KEY, "at" timestamptz NOT NULL, "action" text NOT NULL, "actor" text NOT NULL, "purpose" text NOT NULL, "phone_number_id" text, "request_id" text, "counts" jsonb NOT NULL DEFAULT '{}', "wamids" text[])`,
  ],
];

const INDEXES = [
  `CREATE INDEX "IDX_messages_expires" ON "storage"."messages" ("expires_at")`,
  `CREATE INDEX "IDX_messages_created" ON "storage"."messages" ("created_at")`,
  `CREATE INDEX "IDX_messages_number_user" ON "storage"."messages" ("phone_number_id", "wa_id")`,
  `CREATE INDEX "IDX_statuses_expires" ON "storage"."message_statuses" ("expires_at")`,
  `CREATE INDEX "IDX_statuses_number_user" ON "storage"."message_statuses" ("phone_number_id", "wa_id")`,
  `CREATE INDEX "IDX_contacts_last_status" ON "storage"."contacts" ("last_status_at")`,
  `CREATE INDEX "IDX_pending_expires" ON "storage"."pending" ("expires_at")`,
  `CREATE INDEX "IDX_pending_number_user" ON "storage"."pending" ("phone_number_id", "wa_id")`,
  `CREATE INDEX "IDX_status_marks_created" ON "storage"."status_marks" ("created_at")`,
];

export class MessageStore1764300000000 implements MigrationInterface {
  name = 'MessageStore1764300000000';

  public async up(q: QueryRunner): Promise<void> {
    for (const [, ddl] of TABLES) await q.query(ddl);
    for (const ddl of INDEXES) await q.query(ddl);
    await q.query(dataKeysTableDdl('storage').up);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(dataKeysTableDdl('storage').down);
    for (const [name] of [...TABLES].reverse()) await q.query(`DROP TABLE "storage"."${name}"`);
  }
}
