import { Wamid, type MessageContent } from '@relay/protocol';
import { CloudApiError } from '../common/errors';
import { normalizePhone } from '../common/ids';

export type SendCommand =
  | { kind: 'read'; messageId: string; typing: boolean }
  | { kind: 'message'; toInput: string; waId: string; content: MessageContent; bizOpaque?: string };

/** Types Cloud API has that the relay does not carry yet: Cloud API's own "unsupported type" error. */
const NOT_YET = [
  'audio',
  'contacts',
  'document',
  'image',
  'interactive',
  'location',
  'sticker',
  'template',
  'video',
  'address',
] as const;
const SUPPORTED = ['text', 'reaction'] as const;
const MAX_BODY = 4096;
const MAX_OPAQUE = 512;

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const missing = (p: string) => new CloudApiError(131008, `The parameter ${p} is required.`);
const invalid = (p: string, why: string) => new CloudApiError(131009, `Parameter ${p} is not valid: ${why}`);
const badParam = (why: string) => new CloudApiError(100, why);

/** Validates a POST /messages body the way Cloud API does: same checks, same codes. */
export function parseSend(body: unknown): SendCommand {
  if (!isObj(body)) throw badParam('The request body must be a JSON object.');
  if (body.messaging_product === undefined) throw missing('messaging_product');
  if (body.messaging_product !== 'whatsapp') throw invalid('messaging_product', "must be 'whatsapp'");
  if (body.status !== undefined) return parseRead(body);

  if (body.recipient_type !== undefined && body.recipient_type !== 'individual') {
    throw invalid('recipient_type', "only 'individual' is supported");
  }
  if (body.to === undefined || body.to === '') throw missing('to');
  if (typeof body.to !== 'string') throw badParam('Param to must be a string.');
  const waId = normalizePhone(body.to);
  if (!waId) throw invalid('to', 'not a phone number in international format (country code required)');

  const type = body.type ?? 'text';
  if (typeof type !== 'string') throw badParam('Param type must be a string.');
  if ((NOT_YET as readonly string[]).includes(type)) {
    throw new CloudApiError(131051, `Message type '${type}' is not supported by this relay yet.`);
  }
  if (!(SUPPORTED as readonly string[]).includes(type)) {
    throw badParam(`Param type must be one of {${[...SUPPORTED, ...NOT_YET].join(', ')}}.`);
  }
  const bizOpaque = parseOpaque(body.biz_opaque_callback_data);
  const content = type === 'text' ? parseText(body) : parseReaction(body);
  return { kind: 'message', toInput: body.to, waId, content, bizOpaque };
}

function parseRead(body: Json): SendCommand {
  if (body.status !== 'read') throw badParam("Param status must be 'read'.");
  if (body.message_id === undefined) throw missing('message_id');
  if (typeof body.message_id !== 'string' || !Wamid.safeParse(body.message_id).success) {
    throw invalid('message_id', 'not a message id');
  }
  let typing = false;
  if (body.typing_indicator !== undefined) {
    if (!isObj(body.typing_indicator) || body.typing_indicator.type !== 'text') {
      throw invalid('typing_indicator', "type must be 'text'");
    }
    typing = true;
  }
  return { kind: 'read', messageId: body.message_id, typing };
}

function parseText(body: Json): MessageContent {
  const text = body.text;
  if (text === undefined) throw missing('text');
  if (!isObj(text)) throw badParam('Param text must be an object.');
  if (text.body === undefined || text.body === '') throw missing('text.body');
  if (typeof text.body !== 'string') throw badParam("Param text['body'] must be a string.");
  if (text.body.length > MAX_BODY) {
    throw badParam(`Param text['body'] must be at most ${MAX_BODY} characters long.`);
  }
  if (text.preview_url !== undefined && typeof text.preview_url !== 'boolean') {
    throw badParam("Param text['preview_url'] must be a boolean.");
  }
  const context = parseContext(body.context);
  return {
    type: 'text',
    text: { body: text.body, ...(text.preview_url !== undefined ? { preview_url: text.preview_url } : {}) },
    ...(context ? { context } : {}),
  };
}

function parseReaction(body: Json): MessageContent {
  if (body.context !== undefined) throw badParam('A reaction cannot be sent as a contextual reply.');
  const r = body.reaction;
  if (r === undefined) throw missing('reaction');
  if (!isObj(r)) throw badParam('Param reaction must be an object.');
  if (r.message_id === undefined) throw missing('reaction.message_id');
  if (typeof r.message_id !== 'string' || !Wamid.safeParse(r.message_id).success) {
    throw invalid('reaction.message_id', 'not a message id');
  }
  if (r.emoji === undefined) throw missing('reaction.emoji');
  if (typeof r.emoji !== 'string' || [...r.emoji].length > 8) {
    throw invalid('reaction.emoji', 'must be a single emoji (or empty to remove a reaction)');
  }
  return { type: 'reaction', reaction: { message_id: r.message_id, emoji: r.emoji } };
}

function parseContext(ctx: unknown): { message_id: string } | undefined {
  if (ctx === undefined) return undefined;
  if (!isObj(ctx)) throw badParam('Param context must be an object.');
  if (ctx.message_id === undefined) throw missing('context.message_id');
  if (typeof ctx.message_id !== 'string' || !Wamid.safeParse(ctx.message_id).success) {
    throw invalid('context.message_id', 'not a message id');
  }
  return { message_id: ctx.message_id };
}

function parseOpaque(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badParam('Param biz_opaque_callback_data must be a string.');
  if (v.length > MAX_OPAQUE) {
    throw badParam(`Param biz_opaque_callback_data must be at most ${MAX_OPAQUE} characters long.`);
  }
  return v;
}
