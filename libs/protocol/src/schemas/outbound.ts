import { z } from 'zod';
import { Base64, DeviceAddress, IsoTimestamp, PhoneNumberId, WaId, Wamid } from '../ids';
import { CiphertextType } from './inbound';
import { BusinessContent } from './content';

/** business-forwarding -> crypto: a message the business sent, durable before the API answered. */
export const OutboundRequest = z
  .object({
    wamid: Wamid,
    phone_number_id: PhoneNumberId,
    to: WaId,
    content: BusinessContent,
    biz_opaque_callback_data: z.string().max(512).optional(),
    accepted_at: IsoTimestamp,
  })
  .strict();
export type OutboundRequest = z.infer<typeof OutboundRequest>;

/** crypto -> storage, gateway: the message encrypted for one device of the recipient. */
export const DeviceCiphertext = z
  .object({
    wamid: Wamid,
    phone_number_id: PhoneNumberId,
    to: DeviceAddress,
    type: CiphertextType,
    ciphertext: Base64,
    created_at: IsoTimestamp,
  })
  .strict();
export type DeviceCiphertext = z.infer<typeof DeviceCiphertext>;

export const EncryptFailureReason = z.enum([
  'no_devices',
  'unknown_sender',
  'bundle_unavailable',
  'internal',
]);

/** crypto -> business-forwarding: an outbound message that could not be encrypted for anyone. */
export const OutboundFailure = z
  .object({
    wamid: Wamid,
    phone_number_id: PhoneNumberId,
    to: WaId,
    reason: EncryptFailureReason,
    detail: z.string().max(512),
    failed_at: IsoTimestamp,
  })
  .strict();
export type OutboundFailure = z.infer<typeof OutboundFailure>;
