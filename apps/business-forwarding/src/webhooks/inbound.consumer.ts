import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { NatsBus, PermanentError, type ConsumerHandle } from '@relay/platform';
import type { InboundFailure, InboundMessage } from '@relay/protocol';
import { KeyedBatcher } from '../common/keyed-batcher';
import { rows } from '../common/sql';
import { TenantRepository } from '../tenancy/tenant.repository';
import { DispatchSignal } from './dispatch-signal';
import { WebhookEventWriter } from './event-writer.service';
import { messageEnvelope, unsupportedEnvelope } from './webhook-body';

const S = 'business_forwarding';

/**
 * inbound.message (from crypto) -> the business's webhook outbox and integrator.webhook, and the
 * user's last-inbound time for the 24-hour window. Messages of one number are handled in stream
 * order, so they enter the outbox (and reach the business) in that order.
 */
@Injectable()
export class InboundConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly handles: ConsumerHandle[] = [];
  private readonly batcher = new KeyedBatcher<InboundMessage>((_, items) => this.onMessages(items));

  constructor(
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(DataSource) private readonly ds: DataSource,
    private readonly tenants: TenantRepository,
    private readonly writer: WebhookEventWriter,
    private readonly signal: DispatchSignal,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.handles.push(
      await this.bus.consume(
        'inbound.message',
        // Many messages in flight so that, under load, one number's batch (one transaction) grows with
        // the backlog. Acks are not confirmed: the outbox dedupes on the wamid, so a lost ack only means a
        // redelivery that records nothing, and it saves a round trip per message.
        {
          durable: 'business-forwarding-inbound',
          concurrency: 512,
          ackWaitMs: 10_000,
          confirmAcks: false,
        },
        (m) => this.batcher.add(m.phone_number_id, m),
      ),
      await this.bus.consume(
        'inbound.failure',
        { durable: 'business-forwarding-inbound-failure', concurrency: 8 },
        (f) => this.onFailure(f),
      ),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.handles.map((h) => h.stop()));
  }

  /**
   * Only content the relay cannot represent reaches the business (as Cloud API's `unsupported`
   * message). Undecryptable, replayed or misaddressed envelopes are transport matters between the
   * device and the relay: Cloud API does not report those to businesses either.
   */
  async onFailure(f: InboundFailure): Promise<void> {
    if (f.reason !== 'invalid_plaintext') return;
    const number = await this.tenants.number(f.phone_number_id);
    if (!number) return;
    const recorded = await this.ds.transaction(async (em) => {
      const blocked = await rows(
        em,
        `SELECT 1 FROM ${S}.blocked_users WHERE phone_number_id = $1 AND wa_id = $2`,
        [f.phone_number_id, f.from.wa_id],
      );
      if (blocked.length) return 0;
      return this.writer.record(em, number, [
        {
          dedupeKey: `m:wamid.${f.envelope_id}`,
          partitionKey: `m:${f.phone_number_id}`,
          kind: 'message',
          waId: f.from.wa_id,
          envelope: unsupportedEnvelope(number, f),
        },
      ]);
    });
    if (recorded) this.signal.wake();
  }

  /** One number's messages, in stream order, in one transaction (one round of publishes). */
  async onMessages(batch: InboundMessage[]): Promise<void> {
    const pnid = batch[0].phone_number_id;
    const number = await this.tenants.number(pnid);
    if (!number) throw new PermanentError(`inbound message for unknown number ${pnid}`);
    const users = [...new Set(batch.map((m) => m.from.wa_id))];
    const recorded = await this.ds.transaction(async (em) => {
      // A blocked user cannot reach the business (Cloud API's block list semantics).
      const blocked = new Set(
        (
          await rows<{ wa_id: string }>(
            em,
            `SELECT wa_id FROM ${S}.blocked_users WHERE phone_number_id = $1 AND wa_id = ANY($2::text[])`,
            [pnid, users],
          )
        ).map((r) => r.wa_id),
      );
      const admitted = batch.filter((m) => !blocked.has(m.from.wa_id));
      if (admitted.length === 0) return 0;
      const latest = new Map<string, string>();
      for (const m of admitted) {
        const prev = latest.get(m.from.wa_id);
        if (!prev || prev < m.received_at) latest.set(m.from.wa_id, m.received_at);
      }
      await em.query(
        `INSERT INTO ${S}.user_windows (phone_number_id, wa_id, last_inbound_at)
         SELECT $1, u.wa_id, u.at FROM unnest($2::text[], $3::timestamptz[]) AS u(wa_id, at)
         ON CONFLICT (phone_number_id, wa_id) DO UPDATE
           SET last_inbound_at = GREATEST(${S}.user_windows.last_inbound_at, EXCLUDED.last_inbound_at)`,
        [pnid, [...latest.keys()], [...latest.values()]],
      );
      return this.writer.record(
        em,
        number,
        admitted.map((m) => ({
          dedupeKey: `m:${m.wamid}`,
          partitionKey: `m:${pnid}`,
          kind: 'message' as const,
          waId: m.from.wa_id,
          envelope: messageEnvelope(number, m),
        })),
      );
    });
    if (recorded) this.signal.wake();
  }
}
