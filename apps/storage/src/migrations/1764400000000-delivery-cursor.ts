import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The DELIVERY stream sequence of the last ciphertext queued for each device: before queuing a later
 * one, storage first queues the device's ciphertexts after this one that another (perhaps killed)
 * process still holds, so a device receives each business session's messages in the order crypto
 * encrypted them. NULL: nothing recorded yet (nothing to catch up on).
 */
export class DeliveryCursor1764400000000 implements MigrationInterface {
  name = 'DeliveryCursor1764400000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "storage"."device_counters" ADD "stream_seq" bigint`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "storage"."device_counters" DROP COLUMN "stream_seq"`);
  }
}
