import type { MigrationInterface, QueryRunner } from 'typeorm';

/** A per-device counter drawn at every WebSocket connect: orders connections across replicas. */
export class ConnectionEpoch1764500000000 implements MigrationInterface {
  name = 'ConnectionEpoch1764500000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "gateway"."devices" ADD "connection_epoch" bigint NOT NULL DEFAULT 0`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "gateway"."devices" DROP COLUMN "connection_epoch"`);
  }
}
