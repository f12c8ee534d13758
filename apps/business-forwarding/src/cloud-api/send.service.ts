import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { APP_LOGGER, CLOCK, NatsBus, type Clock } from '@relay/platform';
import { CloudApiError } from '../common/errors';
import { newWamid } from '../common/ids';
import { LimitsService } from '../limits/limits.service';
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

/**
 * POST /messages after validation: limits, a wamid, the message recorded for its statuses, then
 * outbound.request on JetStream. The answer waits for the PubAck: a wamid the business sees is durable.
 */
@Injectable()
export class SendService {
  constructor(
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(APP_LOGGER) private readonly log: Logger,
    private readonly limits: LimitsService,
    private readonly outbound: OutboundMessagesRepository,
    private readonly outbox: OutboxRepository,
    private readonly keys: DataKeys,
  ) {}

  async send(t: Tenant, cmd: SendCommand): Promise<SendResponse | { success: true }> {
    if (cmd.kind === 'read') return this.markRead(t, cmd.messageId, cmd.typing);
    await this.limits.admit(t, cmd.waId);
    const wamid = newWamid();
    const now = this.clock.now();
    const wabaId = t.business.waba_id;
    const pnid = t.number.phone_number_id;
    await this.outbound.insert(
      {
        wamid,
        phone_number_id: pnid,
        waba_id: wabaId,
        wa_id: cmd.waId,
        biz_opaque_enc:
          cmd.bizOpaque !== undefined
            ? await this.keys.seal(wabaId, Buffer.from(cmd.bizOpaque, 'utf8'), `opaque:${wamid}`)
            : null,
      },
      now,
    );
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
          accepted_at: now.toISOString(),
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

  /**
   * Mark as read (and typing indicator): accepted for messages this number received. The relay has
   * no read-receipt event toward user devices yet, so nothing is forwarded to the user.
   */
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
