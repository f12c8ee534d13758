import { z } from 'zod';
import { IsoTimestamp, PhoneNumberId, RegionCode, WaId, WabaId } from '../ids';

/** business-forwarding -> crypto, storage: a number was registered (keys must exist before users talk). */
export const NumberRegistered = z
  .object({
    phone_number_id: PhoneNumberId,
    waba_id: WabaId,
    display_phone_number: z.string().max(32),
    data_localization_region: RegionCode.optional(),
    retention_days: z.number().int().min(1).max(30),
    at: IsoTimestamp,
  })
  .strict();
export type NumberRegistered = z.infer<typeof NumberRegistered>;

export const NumberDeregistered = z
  .object({ phone_number_id: PhoneNumberId, waba_id: WabaId, at: IsoTimestamp })
  .strict();
export type NumberDeregistered = z.infer<typeof NumberDeregistered>;

/** An erasure order: one user's data for a business, or everything the business has. */
export const EraseRequest = z
  .object({
    request_id: z.uuid(),
    waba_id: WabaId,
    phone_number_ids: z.array(PhoneNumberId).max(1000),
    scope: z.enum(['user', 'business']),
    wa_id: WaId.optional(),
    at: IsoTimestamp,
  })
  .strict()
  .refine((r) => (r.scope === 'user') === (r.wa_id !== undefined), {
    message: 'wa_id is required for scope=user and forbidden for scope=business',
  });
export type EraseRequest = z.infer<typeof EraseRequest>;

/** Emitted by each owning service when its part of an erasure is complete. */
export const EraseCompleted = z
  .object({
    request_id: z.uuid(),
    service: z.enum(['crypto', 'storage', 'gateway', 'business-forwarding']),
    counts: z.record(z.string(), z.number().int().nonnegative()),
    at: IsoTimestamp,
  })
  .strict();
export type EraseCompleted = z.infer<typeof EraseCompleted>;

/** gateway -> business-forwarding: a user's judgement of a business, feeding the number's quality. */
export const AbuseReport = z
  .object({
    report_id: z.uuid(),
    phone_number_id: PhoneNumberId,
    wa_id: WaId,
    kind: z.enum(['spam_report', 'block', 'unblock']),
    at: IsoTimestamp,
  })
  .strict();
export type AbuseReport = z.infer<typeof AbuseReport>;
