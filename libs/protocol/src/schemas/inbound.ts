import { z } from 'zod';
import { Base64, DeviceAddress, EnvelopeId, IsoTimestamp, PhoneNumberId, Wamid } from '../ids';
import { MessageContent } from './content';

export const CiphertextType = z.enum(['prekey', 'whisper']);
export type CiphertextType = z.infer<typeof CiphertextType>;

/** gateway -> crypto: an envelope a device sent to a business, durable before the device is acked. */
export const DeviceEnvelope = z
  .object({
    envelope_id: EnvelopeId,
    phone_number_id: PhoneNumberId,
    from: DeviceAddress,
    profile_name: z.string().max(256).optional(),
    type: CiphertextType,
    ciphertext: Base64,
    received_at: IsoTimestamp,
  })
  .strict();
export type DeviceEnvelope = z.infer<typeof DeviceEnvelope>;

/** crypto -> storage, business-forwarding: a decrypted user message. */
export const InboundMessage = z
  .object({
    wamid: Wamid,
    envelope_id: EnvelopeId,
    phone_number_id: PhoneNumberId,
    from: DeviceAddress,
    profile_name: z.string().max(256).optional(),
    /** SHA-256 (hex) of the sender's identity key; changes when the user reinstalls. */
    identity_key_hash: z.string().regex(/^[0-9a-f]{64}$/),
    identity_changed: z.boolean(),
    sent_at: z.number().int().nonnegative(),
    received_at: IsoTimestamp,
    content: MessageContent,
  })
  .strict();
export type InboundMessage = z.infer<typeof InboundMessage>;

export const DecryptFailureReason = z.enum([
  'malformed',
  'oversized',
  'undecryptable',
  'invalid_plaintext',
  'untrusted_identity',
  'replayed_prekey',
  'unknown_recipient',
]);
export type DecryptFailureReason = z.infer<typeof DecryptFailureReason>;

/** crypto -> gateway, business-forwarding: an envelope that could not be turned into a message. */
export const InboundFailure = z
  .object({
    envelope_id: EnvelopeId,
    phone_number_id: PhoneNumberId,
    from: DeviceAddress,
    reason: DecryptFailureReason,
    detail: z.string().max(512),
    failed_at: IsoTimestamp,
  })
  .strict();
export type InboundFailure = z.infer<typeof InboundFailure>;
