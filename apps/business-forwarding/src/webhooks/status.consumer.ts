import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { NatsBus, PermanentError, type ConsumerHandle } from '@relay/platform';
import type { MessageStatus, MessageStatusValue, OutboundFailure, WebhookStatus } from '@relay/protocol';
import { KeyedSerializer } from '../common/keyed-serializer';
import { unixSeconds } from '../common/ids';
import { DataKeys } from '../tenancy/data-keys.service';
import { TenantRepository } from '../tenancy/tenant.repository';
import { DispatchSignal } from './dispatch-signal';
import { WebhookEventWriter } from './event-writer.service';
import { OutboundMessagesRepository } from './outbound-messages.repository';
import { statusesToEmit } from './status-sequence';
import { statusEnvelope } from './webhook-body';

type StatusErrors = NonNullable<MessageStatus['errors']>;
const DEFAULT_ERRORS: StatusErrors = [
  { code: 131000, title: 'Something went wrong', details: 'The message could not be delivered.' },
];
const HREF = 'https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/';

/** Why crypto could not encrypt, as the Cloud API error a business already handles. */
export function failureErrors(f: OutboundFailure): StatusErrors {
  if (f.reason === 'no_devices' || f.reason === 'bundle_unavailable') {
    return [
      {
        code: 131026,
        title: 'Message undeliverable',
        details: 'The recipient has no reachable WhatsApp devices.',
      },
    ];
  }
  return [
    {
      code: 131000,
      title: 'Something went wrong',
      details: 'The message could not be encrypted. Retry later.',
    },
  ];
}

/**
 * status.update (gateway, storage, crypto) and outbound.failure (crypto) -> status webhooks, in the
 * order sent -> delivered -> read (or failed) for each message, each status once.
 */
@Injectable()
export class StatusConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly handles: ConsumerHandle[] = [];
  private readonly serial = new KeyedSerializer();

  constructor(
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(DataSource) private readonly ds: DataSource,
    private readonly tenants: TenantRepository,
    private readonly outbound: OutboundMessagesRepository,
    private readonly keys: DataKeys,
    private readonly writer: WebhookEventWriter,
    private readonly signal: DispatchSignal,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.handles.push(
      await this.bus.consume(
        'status.update',
        { durable: 'business-forwarding-status', concurrency: 64, ackWaitMs: 10_000 },
        (s) => this.serial.run(s.wamid, () => this.apply(s.wamid, s.status, s.timestamp, s.errors)),
      ),
      await this.bus.consume(
        'outbound.failure',
        { durable: 'business-forwarding-outbound-failure', concurrency: 16 },
        (f) => this.serial.run(f.wamid, () => this.apply(f.wamid, 'failed', f.failed_at, failureErrors(f))),
      ),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.handles.map((h) => h.stop()));
  }

  async apply(wamid: string, incoming: MessageStatusValue, at: string, errors?: StatusErrors): Promise<void> {
    const recorded = await this.ds.transaction(async (em) => {
      const row = await this.outbound.lock(em, wamid);
      // Unknown: not sent through this relay, or erased since; nothing to tell anyone.
      if (!row) throw new PermanentError(`status for unknown message ${wamid}`);
      const emits = statusesToEmit(row.last_status, incoming);
      if (emits.length === 0) return 0;
      const number = await this.tenants.number(row.phone_number_id);
      if (!number) throw new PermanentError(`status for removed number ${row.phone_number_id}`);
      const opaque = row.biz_opaque_enc
        ? (await this.keys.open(row.waba_id, row.biz_opaque_enc, `opaque:${wamid}`)).toString('utf8')
        : undefined;
      await this.outbound.setLastStatus(em, wamid, emits[emits.length - 1]);
      return this.writer.record(
        em,
        number,
        emits.map((status) => {
          const s: WebhookStatus = {
            id: wamid,
            status,
            timestamp: unixSeconds(new Date(at)),
            recipient_id: row.wa_id,
            ...(opaque !== undefined ? { biz_opaque_callback_data: opaque } : {}),
            ...(status === 'failed'
              ? {
                  errors: (errors?.length ? errors : DEFAULT_ERRORS).map((e) => ({
                    code: e.code,
                    title: e.title,
                    message: e.title,
                    error_data: { details: e.details ?? e.title },
                    href: HREF,
                  })),
                }
              : {}),
          };
          return {
            dedupeKey: `s:${wamid}:${status}`,
            partitionKey: `s:${wamid}`,
            kind: 'status' as const,
            waId: row.wa_id,
            envelope: statusEnvelope(number, s),
          };
        }),
      );
    });
    if (recorded) this.signal.wake();
  }
}
