import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { Logger } from 'pino';
import { APP_LOGGER, CLOCK, MicroBatcher, NatsBus, type Clock } from '@relay/platform';
import { BF_CONFIG } from '../common/tokens';
import { CloudApiError } from '../common/errors';
import { newWamid } from '../common/ids';
import type { BusinessForwardingConfig } from '../config';
import { LimitsService, type SendAttempt } from '../limits/limits.service';
import type { Tenant } from '../tenancy/auth.service';
import { DataKeys } from '../tenancy/data-keys.service';
import { OutboundMessagesRepository } from '../webhooks/outbound-messages.repository';
import { OutboxRepository } from '../webhooks/outbox.repository';
import type { SendCommand } from './message-validation';

export interface SendResponse {
  messaging_product: 'whatsapp';
  contacts: { input: string; wa_id: string }[];
  messages: { id: string }[];
}

interface PendingSend extends SendAttempt {
  wamid: string;
  bizOpaqueEnc: Buffer | null;
}

const S = 'business_forwarding';
/** Sends per transaction at most; under load batches grow up to this instead of queueing transactions. */
const MAX_BATCH = 256;
/** Postgres errors after which a rolled-back batch is simply run again. */
const RETRYABLE = new Set(['40P01', '40001']);

/**
 * POST /messages after validation: limits, a wamid, the message recorded for its statuses, then
 * outbound.request on JetStream. The answer waits for the commit and the PubAck: a wamid the business
 * sees is durable. Sends arriving together (any numbers, any businesses) are admitted and recorded in
 * one transaction of a few multi-row statements, each still answered on its own.
 */
@Injectable()
export class SendService {
  private readonly batcher: MicroBatcher<PendingSend, Date>;

  constructor(
    @Inject(BF_CONFIG) config: BusinessForwardingConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(APP_LOGGER) private readonly log: Logger,
    @Inject(DataSource) private readonly ds: DataSource,
    private readonly limits: LimitsService,
    private readonly outbound: OutboundMessagesRepository,
    private readonly outbox: OutboxRepository,
    private readonly keys: DataKeys,
  ) {
    // Two at most (and half the pool), so sends never starve the consumers of connections; under load
    // the waiting sends make the next batch bigger rather than queueing more transactions.
    const inFlight = Math.max(1, Math.min(2, Math.floor(config.DATABASE_POOL_SIZE / 2)));
    this.batcher = new MicroBatcher((sends) => this.admitBatch(sends), MAX_BATCH, inFlight);
  }

  async send(t: Tenant, cmd: SendCommand): Promise<SendResponse | { success: true }> {
    if (cmd.kind === 'read') return this.markRead(t, cmd.messageId, cmd.typing);
    this.limits.precheck(t);
    const wamid = newWamid();
    const wabaId = t.business.waba_id;
    const pnid = t.number.phone_number_id;
    const [quality, bizOpaqueEnc] = await Promise.all([
      this.limits.qualityOf(t),
      cmd.bizOpaque !== undefined
        ? this.keys.seal(wabaId, Buffer.from(cmd.bizOpaque, 'utf8'), `opaque:${wamid}`)
        : null,
    ]);
    const acceptedAt = await this.batcher.add({ tenant: t, waId: cmd.waId, quality, wamid, bizOpaqueEnc });
    try {
      await this.bus.publish(
        'outbound.request',
        { phone_number_id: pnid },
        {
          wamid,
          phone_number_id: pnid,
          to: cmd.waId,
          content: cmd.content,
          ...(cmd.bizOpaque !== undefined ? { biz_opaque_callback_data: cmd.bizOpaque } : {}),
          accepted_at: acceptedAt.toISOString(),
        },
        { msgId: wamid },
      );
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'outbound.request not accepted by JetStream');
      await this.outbound.delete(wamid).catch(() => undefined);
      throw new CloudApiError(131000, 'The message could not be accepted. Please retry.');
    }
    return {
      messaging_product: 'whatsapp',
      contacts: [{ input: cmd.toInput, wa_id: cmd.waId }],
      messages: [{ id: wamid }],
    };
  }

  /** One transaction for the batch: limits for every send, then one insert of the admitted ones. */
  private async admitBatch(sends: PendingSend[]): Promise<(Date | Error)[]> {
    for (let attempt = 1; ; attempt++) {
      const now = this.clock.now();
      try {
        const verdicts = await this.ds.transaction(async (em) => {
          const v = await this.limits.admitMany(em, sends, now);
          await this.record(
            em,
            sends.filter((_, i) => v[i] === null),
            now,
          );
          return v;
        });
        await this.limits.pruneIfDue().catch((err: Error) => {
          this.log.warn({ err: err.message }, 'pruning limit state failed');
        });
        return verdicts.map((v) => v ?? now);
      } catch (err) {
        const e = err as { driverError?: { code?: string }; code?: string };
        const code = e.driverError?.code ?? e.code;
        if (attempt < 3 && code && RETRYABLE.has(code)) continue;
        throw err;
      }
    }
  }

  private async record(em: EntityManager, sends: PendingSend[], at: Date): Promise<void> {
    if (sends.length === 0) return;
    await em.query(
      `INSERT INTO ${S}.outbound_messages (wamid, phone_number_id, waba_id, wa_id, biz_opaque_enc, created_at)
       SELECT u.wamid, u.pnid, u.waba, u.wa, u.opaque, $6
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[]) AS u(wamid, pnid, waba, wa, opaque)`,
      [
        sends.map((s) => s.wamid),
        sends.map((s) => s.tenant.number.phone_number_id),
        sends.map((s) => s.tenant.business.waba_id),
        sends.map((s) => s.waId),
        sends.map((s) => s.bizOpaqueEnc),
        at,
      ],
    );
  }

  /**
   * Mark as read (and typing indicator): a read receipt encrypted to the user's devices like any
   * message, so the user sees the business read it. Not a message of the business: no wamid returned,
   * no status webhooks, no throughput or pair limit counted.
   */
  private async markRead(t: Tenant, messageId: string, typing: boolean): Promise<{ success: true }> {
    if (!t.number.registered) {
      throw new CloudApiError(133010, 'The phone number is not registered. Call /register first.');
    }
    const pnid = t.number.phone_number_id;
    const user = await this.outbox.inboundSender(pnid, messageId);
    if (!user) {
      throw new CloudApiError(
        131009,
        'Parameter message_id is not valid: no such message received by this number.',
      );
    }
    const wamid = newWamid();
    try {
      await this.bus.publish(
        'outbound.request',
        { phone_number_id: pnid },
        {
          wamid,
          phone_number_id: pnid,
          to: user,
          content: {
            type: 'read_receipt',
            read_receipt: { message_id: messageId, ...(typing ? { typing_indicator: true } : {}) },
          },
          accepted_at: this.clock.now().toISOString(),
        },
        { msgId: wamid },
      );
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'read receipt not accepted by JetStream');
      throw new CloudApiError(131000, 'The read receipt could not be accepted. Please retry.');
    }
    return { success: true };
  }
}
