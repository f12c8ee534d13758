import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { NatsBus, PermanentError, type ConsumerHandle } from '@relay/platform';
import type { InboundMessage } from '@relay/protocol';
import { KeyedSerializer } from '../common/keyed-serializer';
import { rows } from '../common/sql';
import { TenantRepository } from '../tenancy/tenant.repository';
import { DispatchSignal } from './dispatch-signal';
import { WebhookEventWriter } from './event-writer.service';
import { messageEnvelope } from './webhook-body';

const S = 'business_forwarding';

/**
 * inbound.message (from crypto) -> the business's webhook outbox and integrator.webhook, and the
 * user's last-inbound time for the 24-hour window. Messages of one number are handled in stream
 * order, so they enter the outbox (and reach the business) in that order.
 */
@Injectable()
export class InboundConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private handle?: ConsumerHandle;
  private readonly serial = new KeyedSerializer();

  constructor(
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(DataSource) private readonly ds: DataSource,
    private readonly tenants: TenantRepository,
    private readonly writer: WebhookEventWriter,
    private readonly signal: DispatchSignal,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.handle = await this.bus.consume(
      'inbound.message',
      { durable: 'business-forwarding-inbound', concurrency: 64, ackWaitMs: 10_000 },
      (m) => this.serial.run(m.phone_number_id, () => this.onMessage(m)),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.handle?.stop();
  }

  async onMessage(m: InboundMessage): Promise<void> {
    const number = await this.tenants.number(m.phone_number_id);
    if (!number) throw new PermanentError(`inbound message for unknown number ${m.phone_number_id}`);
    const waId = m.from.wa_id;
    const recorded = await this.ds.transaction(async (em) => {
      const blocked = await rows(
        em,
        `SELECT 1 FROM ${S}.blocked_users WHERE phone_number_id = $1 AND wa_id = $2`,
        [m.phone_number_id, waId],
      );
      // A blocked user cannot reach the business (Cloud API's block list semantics).
      if (blocked.length) return 0;
      await em.query(
        `INSERT INTO ${S}.user_windows (phone_number_id, wa_id, last_inbound_at) VALUES ($1,$2,$3)
         ON CONFLICT (phone_number_id, wa_id) DO UPDATE
           SET last_inbound_at = GREATEST(${S}.user_windows.last_inbound_at, $3)`,
        [m.phone_number_id, waId, m.received_at],
      );
      return this.writer.record(em, number, [
        {
          dedupeKey: `m:${m.wamid}`,
          partitionKey: `m:${m.phone_number_id}`,
          kind: 'message',
          waId,
          envelope: messageEnvelope(number, m),
        },
      ]);
    });
    if (recorded) this.signal.wake();
  }
}
