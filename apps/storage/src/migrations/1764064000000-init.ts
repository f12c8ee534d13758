import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Init1764064000000 implements MigrationInterface {
  name = 'Init1764064000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE TABLE "storage"."processed_events" ("consumer" text NOT NULL, "event_id" text NOT NULL, "processed_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_storage_processed_events" PRIMARY KEY ("consumer", "event_id"))`,
    );
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "storage"."processed_events"`);
  }
}
