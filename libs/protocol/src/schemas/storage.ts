import { z } from 'zod';
import { Base64, DeviceAddress, IsoTimestamp, PhoneNumberId, Wamid } from '../ids';
import { CiphertextType } from './inbound';

/** gateway -> storage: the messages waiting for a device, oldest first. */
export const PendingRequest = z
  .object({
    to: DeviceAddress,
    after_seq: z.number().int().nonnegative().optional(),
    limit: z.number().int().min(1).max(500),
  })
  .strict();
export const PendingItem = z
  .object({
    seq: z.number().int().nonnegative(),
    wamid: Wamid,
    phone_number_id: PhoneNumberId,
    type: CiphertextType,
    ciphertext: Base64,
    created_at: IsoTimestamp,
  })
  .strict();
export const PendingResponse = z.object({ items: z.array(PendingItem) }).strict();
export type PendingItem = z.infer<typeof PendingItem>;

/** gateway -> storage: the device acknowledged these messages; they leave its queue. */
export const PendingAck = z.object({ to: DeviceAddress, wamids: z.array(Wamid).min(1).max(500) }).strict();
export const PendingAckResponse = z.object({ removed: z.number().int().nonnegative() }).strict();
