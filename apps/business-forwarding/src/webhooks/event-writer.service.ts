import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { CLOCK, NatsBus, type Clock } from '@relay/platform';
import type { WebhookEnvelope } from '@relay/protocol';
import { BF_CONFIG } from '../common/tokens';
import type { BusinessForwardingConfig } from '../config';
import { DataKeys } from '../tenancy/data-keys.service';
import { OutboxRepository } from './outbox.repository';
import { asciiJson } from './webhook-body';

export interface WebhookItem {
  dedupeKey: string;
  partitionKey: string;
  kind: 'message' | 'status';
  waId: string;
  envelope: WebhookEnvelope;
}

/**
 * Records webhook events in the outbox (body sealed with the business's data key) and, for a number
 * with NATS delivery on, publishes the same body on `integrator.webhook`, inside the caller's transaction: if the publish fails nothing is
 * committed and the source event is redelivered; a publish repeated after a lost commit is dropped
 * by JetStream's duplicate window (same Nats-Msg-Id).
 */
@Injectable()
export class WebhookEventWriter {
  constructor(
    @Inject(BF_CONFIG) private readonly config: BusinessForwardingConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(NatsBus) private readonly bus: NatsBus,
    private readonly outbox: OutboxRepository,
    private readonly keys: DataKeys,
  ) {}

  async record(
    em: EntityManager,
    number: { waba_id: string; phone_number_id: string; nats_delivery: boolean },
    items: WebhookItem[],
  ): Promise<number> {
    const key = await this.keys.key(number.waba_id);
    const now = this.clock.now();
    const deadline = new Date(now.getTime() + this.config.WEBHOOK_RETRY_WINDOW_MS);
    const inserted = new Set(
      await this.outbox.insert(
        em,
        items.map((i) => ({
          dedupe_key: i.dedupeKey,
          waba_id: number.waba_id,
          phone_number_id: number.phone_number_id,
          wa_id: i.waId,
          partition_key: i.partitionKey,
          kind: i.kind,
          body_enc: this.keys.sealWith(key, asciiJson(i.envelope), i.dedupeKey),
        })),
        now,
        deadline,
      ),
    );
    if (!number.nats_delivery) return inserted.size;
    // Published together: one connection keeps them in call order, and one wait covers all PubAcks.
    await Promise.all(
      items
        .filter((i) => inserted.has(i.dedupeKey))
        .map((i) =>
          this.bus.publish('integrator.webhook', { phone_number_id: number.phone_number_id }, i.envelope, {
            msgId: i.dedupeKey,
          }),
        ),
    );
    return inserted.size;
  }
}
