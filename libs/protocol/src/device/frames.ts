import { z } from 'zod';
import { Base64, EnvelopeId, IsoTimestamp, PhoneNumberId, Wamid } from '../ids';
import { CiphertextType, DecryptFailureReason } from '../schemas/inbound';

/**
 * WebSocket frames between a user's device and the gateway (docs/device-protocol.md, protocol v1).
 * Every frame is one JSON text frame. The device SDK and the gateway validate with these same schemas.
 */

/** A client-chosen id correlating a request frame with its result or error frame. */
export const FrameId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'id must be 1-64 url-safe chars');

/** Largest ciphertext (decoded bytes) a device may send; base64 of it is at most 4/3 larger. */
export const MAX_DEVICE_CIPHERTEXT_BYTES = 64 * 1024;
const CiphertextB64 = Base64.refine(
  (s) => s.length > 0 && s.length <= Math.ceil(MAX_DEVICE_CIPHERTEXT_BYTES / 3) * 4,
  {
    message: `ciphertext must be 1..${MAX_DEVICE_CIPHERTEXT_BYTES} bytes`,
  },
);

// ---- device -> gateway

export const SendFrame = z
  .object({
    type: z.literal('send'),
    /** The envelope id: a resend with the same id is acknowledged again but delivered once. */
    id: EnvelopeId,
    to: PhoneNumberId,
    ciphertext_type: CiphertextType,
    ciphertext: CiphertextB64,
    profile_name: z.string().max(256).optional(),
  })
  .strict();
export type SendFrame = z.infer<typeof SendFrame>;

/** The device stored (or could not decrypt) these messages: they leave its queue. */
export const AckFrame = z
  .object({
    type: z.literal('ack'),
    id: FrameId,
    wamids: z.array(Wamid).min(1).max(100),
    outcome: z.enum(['delivered', 'undecryptable']).optional(),
  })
  .strict();
export type AckFrame = z.infer<typeof AckFrame>;

export const ReceiptFrame = z
  .object({
    type: z.literal('receipt'),
    id: FrameId,
    status: z.literal('read'),
    phone_number_id: PhoneNumberId,
    wamids: z.array(Wamid).min(1).max(100),
  })
  .strict();
export type ReceiptFrame = z.infer<typeof ReceiptFrame>;

export const AbuseKind = z.enum(['spam_report', 'block', 'unblock']);
export const ReportFrame = z
  .object({ type: z.literal('report'), id: FrameId, phone_number_id: PhoneNumberId, kind: AbuseKind })
  .strict();
export type ReportFrame = z.infer<typeof ReportFrame>;

export const ClientFrame = z.discriminatedUnion('type', [SendFrame, AckFrame, ReceiptFrame, ReportFrame]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export const CLIENT_FRAME_TYPES = ['send', 'ack', 'receipt', 'report'] as const;

// ---- gateway -> device
// Not strict: a newer gateway may add fields, and an older client must still read the frame.

export const MessageFrame = z.object({
  type: z.literal('message'),
  wamid: Wamid,
  from: PhoneNumberId,
  ciphertext_type: CiphertextType,
  ciphertext: Base64,
  created_at: IsoTimestamp,
});
export type MessageFrame = z.infer<typeof MessageFrame>;

/** Sent once per connection when the stored backlog has been pushed. */
export const QueueEmptyFrame = z.object({ type: z.literal('queue_empty') });

export const ResultFrame = z.object({
  type: z.literal('result'),
  id: z.string(),
  /** send only: true when this envelope id had already been accepted (not delivered twice). */
  duplicate: z.boolean().optional(),
});
export type ResultFrame = z.infer<typeof ResultFrame>;

export const FRAME_ERROR_CODES = [
  'malformed_frame',
  'binary_not_supported',
  'unknown_type',
  'invalid_frame',
  'rate_limited',
  'unavailable',
  'internal',
] as const;
export const FrameErrorCode = z.enum(FRAME_ERROR_CODES);
export type FrameErrorCode = z.infer<typeof FrameErrorCode>;

export const ErrorFrame = z.object({
  type: z.literal('error'),
  /** The id of the frame this answers, or null when the frame had no readable id. */
  id: z.string().nullable(),
  code: FrameErrorCode,
  message: z.string(),
  retry_after_ms: z.number().int().nonnegative().optional(),
});
export type ErrorFrame = z.infer<typeof ErrorFrame>;

/** The relay could not decrypt an envelope this device sent earlier (already acknowledged). */
export const FailureFrame = z.object({
  type: z.literal('failure'),
  envelope_id: EnvelopeId,
  phone_number_id: PhoneNumberId,
  reason: DecryptFailureReason,
  detail: z.string(),
});
export type FailureFrame = z.infer<typeof FailureFrame>;

export const ServerFrame = z.discriminatedUnion('type', [
  MessageFrame,
  QueueEmptyFrame,
  ResultFrame,
  ErrorFrame,
  FailureFrame,
]);
export type ServerFrame = z.infer<typeof ServerFrame>;

/** WebSocket close codes the gateway uses (besides the standard 1000/1001/1006/1009/1011). */
export const DEVICE_CLOSE_CODES = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SLOW_CONSUMER: 4008,
  DEVICE_REMOVED: 4403,
  CONNECTED_ELSEWHERE: 4409,
} as const;
