import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The published mark of the outbox (README "Per-session order"): under the session lock, an outbound
 * batch first publishes the session's delivery ciphertexts that were committed but never published (a
 * publish failed, or the process died after the commit), so a later ciphertext never enters DELIVERY
 * before an earlier one, whichever process made them.
 *
 * - `published_at`: set once the row's event is known to be stored in its stream. Rows from before this
 *   column count as published (their inputs were acknowledged, or will be redelivered and re-published
 *   from the outbox): the column is added with a default, which Postgres stores once in the catalog
 *   instead of rewriting the table, and the default is dropped so new rows start unpublished.
 * - `seq`: commit order per session. A row's number is drawn while its transaction holds the session
 *   lock, so it is greater than that of every row committed for the session before (created_at is the
 *   transaction's start, which can precede an earlier holder's commit). The sequence keeps CACHE 1: a
 *   per-connection cache would hand out numbers out of that order. Older rows keep NULL (published).
 * - the partial index holds only unpublished delivery ciphertexts, so the lookup per batch stays small
 *   whatever the outbox holds.
 */
export class OutboxPublished1764300000000 implements MigrationInterface {
  name = 'OutboxPublished1764300000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "crypto"."outbox" ADD "published_at" timestamptz DEFAULT now()`);
    await q.query(`ALTER TABLE "crypto"."outbox" ALTER "published_at" DROP DEFAULT`);
    await q.query(`ALTER TABLE "crypto"."outbox" ADD "seq" bigint`);
    await q.query(`CREATE SEQUENCE "crypto"."outbox_seq" CACHE 1 OWNED BY "crypto"."outbox"."seq"`);
    await q.query(
      `ALTER TABLE "crypto"."outbox" ALTER "seq" SET DEFAULT nextval('"crypto"."outbox_seq"'::regclass)`,
    );
    await q.query(
      `CREATE INDEX "outbox_unpublished" ON "crypto"."outbox" ("phone_number_id", "wa_id", "seq")
       WHERE "published_at" IS NULL AND "event" = 'delivery.ciphertext'`,
    );
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "crypto"."outbox_unpublished"`);
    // Drops the sequence it owns as well.
    await q.query(`ALTER TABLE "crypto"."outbox" DROP COLUMN "seq"`);
    await q.query(`ALTER TABLE "crypto"."outbox" DROP COLUMN "published_at"`);
  }
}
