import { z } from 'zod';
import { PhoneNumberId, WaId, WabaId, Wamid } from '../ids';

/**
 * Meta's webhook envelope (field "messages") exactly as business-forwarding POSTs it to a business's
 * callback URL and publishes it on `integrator.webhook`: one event (one message or one status) per
 * envelope. Field names are Cloud API's, so an existing Cloud API webhook handler parses it unchanged.
 */
const UnixSeconds = z.string().regex(/^\d{1,12}$/, 'unix seconds as a string');

export const WebhookError = z
  .object({
    code: z.number().int(),
    title: z.string(),
    message: z.string(),
    error_data: z.object({ details: z.string() }).strict(),
    href: z.string().optional(),
  })
  .strict();

export const WebhookMetadata = z
  .object({ display_phone_number: z.string().max(32), phone_number_id: PhoneNumberId })
  .strict();

export const WebhookContact = z
  .object({
    profile: z.object({ name: z.string().max(256) }).strict(),
    wa_id: WaId,
    /** Present only when the number enabled the identity-change check (settings.user_identity_change). */
    identity_key_hash: z.string().optional(),
  })
  .strict();

const MessageBase = {
  from: WaId,
  id: Wamid,
  timestamp: UnixSeconds,
  context: z.object({ from: z.string(), id: Wamid }).strict().optional(),
};

export const WebhookTextMessage = z
  .object({ ...MessageBase, type: z.literal('text'), text: z.object({ body: z.string() }).strict() })
  .strict();

export const WebhookReactionMessage = z
  .object({
    ...MessageBase,
    type: z.literal('reaction'),
    reaction: z.object({ message_id: Wamid, emoji: z.string() }).strict(),
  })
  .strict();

/** A message the relay could not turn into content (e.g. a type it does not carry), as Meta reports it. */
export const WebhookUnsupportedMessage = z
  .object({ ...MessageBase, type: z.literal('unsupported'), errors: z.array(WebhookError).min(1).max(4) })
  .strict();

export const WebhookMessage = z.discriminatedUnion('type', [
  WebhookTextMessage,
  WebhookReactionMessage,
  WebhookUnsupportedMessage,
]);
export type WebhookMessage = z.infer<typeof WebhookMessage>;

export const WebhookStatus = z
  .object({
    id: Wamid,
    status: z.enum(['sent', 'delivered', 'read', 'failed']),
    timestamp: UnixSeconds,
    recipient_id: WaId,
    biz_opaque_callback_data: z.string().max(512).optional(),
    errors: z.array(WebhookError).max(4).optional(),
  })
  .strict();
export type WebhookStatus = z.infer<typeof WebhookStatus>;

export const WebhookMessagesValue = z
  .object({
    messaging_product: z.literal('whatsapp'),
    metadata: WebhookMetadata,
    contacts: z.array(WebhookContact).length(1),
    messages: z.array(WebhookMessage).length(1),
  })
  .strict();

export const WebhookStatusesValue = z
  .object({
    messaging_product: z.literal('whatsapp'),
    metadata: WebhookMetadata,
    statuses: z.array(WebhookStatus).length(1),
  })
  .strict();

export const WebhookEnvelope = z
  .object({
    object: z.literal('whatsapp_business_account'),
    entry: z
      .array(
        z
          .object({
            id: WabaId,
            changes: z
              .array(
                z
                  .object({
                    field: z.literal('messages'),
                    value: z.union([WebhookMessagesValue, WebhookStatusesValue]),
                  })
                  .strict(),
              )
              .length(1),
          })
          .strict(),
      )
      .length(1),
  })
  .strict();
export type WebhookEnvelope = z.infer<typeof WebhookEnvelope>;
