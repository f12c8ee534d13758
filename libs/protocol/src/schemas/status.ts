import { z } from 'zod';
import { DeviceId, IsoTimestamp, PhoneNumberId, WaId, Wamid } from '../ids';

export const MessageStatusValue = z.enum(['sent', 'delivered', 'read', 'failed']);
export type MessageStatusValue = z.infer<typeof MessageStatusValue>;

export const StatusError = z
  .object({ code: z.number().int(), title: z.string().max(256), details: z.string().max(1024).optional() })
  .strict();

/** gateway, storage, crypto -> business-forwarding, storage: the status of an outbound message. */
export const MessageStatus = z
  .object({
    wamid: Wamid,
    phone_number_id: PhoneNumberId,
    recipient_id: WaId,
    device_id: DeviceId.optional(),
    status: MessageStatusValue,
    timestamp: IsoTimestamp,
    errors: z.array(StatusError).max(4).optional(),
  })
  .strict();
export type MessageStatus = z.infer<typeof MessageStatus>;
