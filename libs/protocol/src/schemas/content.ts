import { z } from 'zod';
import { Wamid } from '../ids';

/**
 * The message content carried end to end. A device encrypts exactly this JSON (UTF-8) as the Signal
 * plaintext; the business sees the same fields in Cloud API's webhook shape. Kept to Cloud API's names.
 */
export const TextContent = z
  .object({
    type: z.literal('text'),
    text: z.object({ body: z.string().min(1).max(4096), preview_url: z.boolean().optional() }).strict(),
    context: z.object({ message_id: Wamid }).strict().optional(),
  })
  .strict();

export const ReactionContent = z
  .object({
    type: z.literal('reaction'),
    // An empty emoji removes a reaction, as in Cloud API.
    reaction: z.object({ message_id: Wamid, emoji: z.string().max(16) }).strict(),
  })
  .strict();

export const MessageContent = z.discriminatedUnion('type', [TextContent, ReactionContent]);
export type MessageContent = z.infer<typeof MessageContent>;

/**
 * The business read a user's message (Cloud API's mark-as-read, optionally with the typing
 * indicator). Carried end to end inside the Signal message like Signal's own receipts, so the relay
 * learns nothing new; it is not a message: no status webhooks, never sent by a user.
 */
export const ReadReceiptContent = z
  .object({
    type: z.literal('read_receipt'),
    read_receipt: z.object({ message_id: Wamid, typing_indicator: z.boolean().optional() }).strict(),
  })
  .strict();
export type ReadReceiptContent = z.infer<typeof ReadReceiptContent>;

/** What a business sends a user's devices: messages, and read receipts. */
export const BusinessContent = z.discriminatedUnion('type', [
  TextContent,
  ReactionContent,
  ReadReceiptContent,
]);
export type BusinessContent = z.infer<typeof BusinessContent>;

/** What a user's device puts inside a Signal message (the plaintext). */
export const DevicePlaintext = z
  .object({
    v: z.literal(1),
    /** Business-to-user messages carry the wamid; user-to-business messages leave it out. */
    wamid: Wamid.optional(),
    sent_at: z.number().int().nonnegative(),
    /** Users' devices send MessageContent only; crypto refuses anything else from them. */
    content: BusinessContent,
  })
  .strict();
export type DevicePlaintext = z.infer<typeof DevicePlaintext>;

/** Upper bound of a Signal ciphertext the relay accepts (a 4096-char body plus framing fits well). */
export const MAX_CIPHERTEXT_BYTES = 64 * 1024;
