import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Per-subscription cap on webhook events joined into one POST (null: the service default), and the
 * per-number switch for the NATS copy of webhooks (integrator.webhook), off unless an integrator uses it.
 */
export class WebhookBatching1764400000000 implements MigrationInterface {
  name = 'WebhookBatching1764400000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE "business_forwarding"."webhook_subscriptions" ADD COLUMN max_events_per_post integer
         CHECK (max_events_per_post BETWEEN 1 AND 1000)`,
    );
    await q.query(
      `ALTER TABLE "business_forwarding"."phone_numbers" ADD COLUMN nats_delivery boolean NOT NULL DEFAULT false`,
    );
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "business_forwarding"."phone_numbers" DROP COLUMN nats_delivery`);
    await q.query(
      `ALTER TABLE "business_forwarding"."webhook_subscriptions" DROP COLUMN max_events_per_post`,
    );
  }
}
