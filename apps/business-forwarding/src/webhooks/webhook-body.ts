import type {
  InboundFailure,
  InboundMessage,
  WebhookEnvelope,
  WebhookMessage,
  WebhookStatus,
} from '@relay/protocol';
import { displayDigits, unixSeconds } from '../common/ids';

export interface NumberInfo {
  waba_id: string;
  phone_number_id: string;
  display_phone_number: string;
  identity_key_check: boolean;
}

function envelope(n: NumberInfo, value: Record<string, unknown>): WebhookEnvelope {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: n.waba_id,
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: {
                display_phone_number: displayDigits(n.display_phone_number),
                phone_number_id: n.phone_number_id,
              },
              ...value,
            } as WebhookEnvelope['entry'][0]['changes'][0]['value'],
          },
        ],
      },
    ],
  };
}

/** A user's message in Cloud API's webhook shape (text with optional reply context, or reaction). */
export function messageEnvelope(n: NumberInfo, m: InboundMessage): WebhookEnvelope {
  const base = { from: m.from.wa_id, id: m.wamid, timestamp: unixSeconds(new Date(m.received_at)) };
  const c = m.content;
  const message: WebhookMessage =
    c.type === 'text'
      ? {
          ...base,
          ...(c.context
            ? { context: { from: displayDigits(n.display_phone_number), id: c.context.message_id } }
            : {}),
          type: 'text',
          text: { body: c.text.body },
        }
      : {
          ...base,
          type: 'reaction',
          reaction: { message_id: c.reaction.message_id, emoji: c.reaction.emoji },
        };
  const contact = {
    profile: { name: m.profile_name ?? '' },
    wa_id: m.from.wa_id,
    ...(n.identity_key_check ? { identity_key_hash: m.identity_key_hash } : {}),
  };
  return envelope(n, { contacts: [contact], messages: [message] });
}

/**
 * A user message the relay received but cannot show (its content is not a type the relay carries):
 * Cloud API's `unsupported` message with error 131051. The envelope id stands in for the message id.
 */
export function unsupportedEnvelope(n: NumberInfo, f: InboundFailure): WebhookEnvelope {
  const details = 'Message type is currently not supported.';
  return envelope(n, {
    contacts: [{ profile: { name: '' }, wa_id: f.from.wa_id }],
    messages: [
      {
        from: f.from.wa_id,
        id: `wamid.${f.envelope_id}`,
        timestamp: unixSeconds(new Date(f.failed_at)),
        type: 'unsupported',
        errors: [
          {
            code: 131051,
            title: 'Message type unknown',
            message: 'Message type unknown',
            error_data: { details },
          },
        ],
      },
    ],
  });
}

export function statusEnvelope(n: NumberInfo, s: WebhookStatus): WebhookEnvelope {
  return envelope(n, { statuses: [s] });
}

/**
 * Serializes as Meta does: JSON with every non-ASCII UTF-16 unit escaped as \uXXXX, so the signed
 * bytes are pure ASCII and a receiver that re-encodes the text can still verify the signature.
 */
export function asciiJson(value: unknown): Buffer {
  const json = JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return Buffer.from(json, 'ascii');
}
