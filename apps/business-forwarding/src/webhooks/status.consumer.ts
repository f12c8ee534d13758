import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { APP_LOGGER, NatsBus, PermanentError, type ConsumerHandle } from '@relay/platform';
import type { MessageStatus, MessageStatusValue, OutboundFailure, WebhookStatus } from '@relay/protocol';
import { KeyedBatcher } from '../common/keyed-batcher';
import { rows } from '../common/sql';
import { unixSeconds } from '../common/ids';
import { DataKeys } from '../tenancy/data-keys.service';
import { TenantCache } from '../tenancy/tenant-cache.service';
import { DispatchSignal } from './dispatch-signal';
import { WebhookEventWriter, type WebhookItem } from './event-writer.service';
import type { OutboundRow } from './outbound-messages.repository';
import { statusesToEmit } from './status-sequence';
import { statusEnvelope, type NumberInfo } from './webhook-body';

type StatusErrors = NonNullable<MessageStatus['errors']>;
const DEFAULT_ERRORS: StatusErrors = [
  { code: 131000, title: 'Something went wrong', details: 'The message could not be delivered.' },
];
const S = 'business_forwarding';
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

interface StatusInput {
  wamid: string;
  status: MessageStatusValue;
  at: string;
  errors?: StatusErrors;
}

/**
 * status.update (gateway, storage, crypto) and outbound.failure (crypto) -> status webhooks, in the
 * order sent -> delivered -> read (or failed) for each message, each status once. A number's statuses
 * are applied in batches, one transaction each.
 */
@Injectable()
export class StatusConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly handles: ConsumerHandle[] = [];
  private readonly batcher = new KeyedBatcher<StatusInput>((pnid, items) => this.applyBatch(pnid, items));

  constructor(
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(APP_LOGGER) private readonly log: Logger,
    private readonly tenants: TenantCache,
    private readonly keys: DataKeys,
    private readonly writer: WebhookEventWriter,
    private readonly signal: DispatchSignal,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.handles.push(
      await this.bus.consume(
        'status.update',
        { durable: 'business-forwarding-status', concurrency: 128, ackWaitMs: 10_000 },
        (s) =>
          this.batcher.add(s.phone_number_id, {
            wamid: s.wamid,
            status: s.status,
            at: s.timestamp,
            errors: s.errors,
          }),
      ),
      await this.bus.consume(
        'outbound.failure',
        { durable: 'business-forwarding-outbound-failure', concurrency: 16, ackWaitMs: 10_000 },
        (f) =>
          this.batcher.add(f.phone_number_id, {
            wamid: f.wamid,
            status: 'failed',
            at: f.failed_at,
            errors: failureErrors(f),
          }),
      ),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.handles.map((h) => h.stop()));
  }

  async applyBatch(pnid: string, items: StatusInput[]): Promise<void> {
    const number = await this.tenants.number(pnid);
    if (!number) throw new PermanentError(`statuses for unknown number ${pnid}`);
    const recorded = await this.ds.transaction(async (em) => {
      const wamids = [...new Set(items.map((i) => i.wamid))].sort();
      // Locked in a fixed order, so concurrent batches of two replicas cannot deadlock.
      const found = await rows<OutboundRow>(
        em,
        `SELECT wamid, phone_number_id, waba_id, wa_id, biz_opaque_enc, last_status
         FROM ${S}.outbound_messages WHERE wamid = ANY($1::text[]) AND phone_number_id = $2
         ORDER BY wamid FOR UPDATE`,
        [wamids, pnid],
      );
      const byId = new Map(found.map((r) => [r.wamid, r]));
      const last = new Map<string, MessageStatusValue>();
      const webhooks: WebhookItem[] = [];
      for (const item of items) {
        const row = byId.get(item.wamid);
        // Unknown: not sent through this relay, or erased since; nothing to tell anyone.
        if (!row) {
          this.log.debug({ wamid: item.wamid }, 'status for an unknown message dropped');
          continue;
        }
        const emits = statusesToEmit(last.get(item.wamid) ?? row.last_status, item.status);
        if (emits.length === 0) continue;
        last.set(item.wamid, emits[emits.length - 1]);
        const opaque = row.biz_opaque_enc
          ? (await this.keys.open(row.waba_id, row.biz_opaque_enc, `opaque:${row.wamid}`)).toString('utf8')
          : undefined;
        for (const status of emits) webhooks.push(this.item(number, row, status, item, opaque));
      }
      if (last.size === 0) return 0;
      await em.query(
        `UPDATE ${S}.outbound_messages o SET last_status = u.s
         FROM unnest($1::text[], $2::text[]) AS u(w, s) WHERE o.wamid = u.w`,
        [[...last.keys()], [...last.values()]],
      );
      return this.writer.record(em, number, webhooks);
    });
    if (recorded) this.signal.wake();
  }

  private item(
    number: NumberInfo,
    row: OutboundRow,
    status: MessageStatusValue,
    input: StatusInput,
    opaque?: string,
  ): WebhookItem {
    const s: WebhookStatus = {
      id: row.wamid,
      status,
      timestamp: unixSeconds(new Date(input.at)),
      recipient_id: row.wa_id,
      ...(opaque !== undefined ? { biz_opaque_callback_data: opaque } : {}),
      ...(status === 'failed'
        ? {
            errors: (input.errors?.length ? input.errors : DEFAULT_ERRORS).map((e) => ({
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
      dedupeKey: `s:${row.wamid}:${status}`,
      partitionKey: `s:${row.wamid}`,
      kind: 'status',
      waId: row.wa_id,
      envelope: statusEnvelope(number, s),
    };
  }
}
