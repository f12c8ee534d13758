import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The stream sequence of the last device envelope applied to each session: before decrypting a later
 * envelope, crypto first applies the session's envelopes after this one that are still in the stream
 * (held by a process that died, or waiting in another batch), so a session's envelopes are applied in
 * stream order. NULL (sessions from before this column, or new ones) means nothing to catch up on.
 */
export class SessionCursor1764200000000 implements MigrationInterface {
  name = 'SessionCursor1764200000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "crypto"."sessions" ADD "last_seq" bigint`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "crypto"."sessions" DROP COLUMN "last_seq"`);
  }
}
