import { z } from 'zod';

/**
 * Identifier formats shared by every service. They are validated at every edge because they end up in
 * NATS subject tokens, where a '.', '*' or '>' would change the meaning of a subject.
 */

/** A user's WhatsApp id: the phone number in E.164 digits, without '+'. */
export const WaId = z.string().regex(/^[1-9]\d{6,14}$/, 'wa_id must be 7-15 digits (E.164 without +)');
export type WaId = z.infer<typeof WaId>;

/** Business phone number id as Cloud API issues it: a numeric string. */
export const PhoneNumberId = z.string().regex(/^\d{1,32}$/, 'phone_number_id must be a numeric string');
export type PhoneNumberId = z.infer<typeof PhoneNumberId>;

/** WhatsApp Business Account id. */
export const WabaId = z.string().regex(/^\d{1,32}$/, 'waba_id must be a numeric string');
export type WabaId = z.infer<typeof WabaId>;

/** Signal device id: 1 is the primary device; linked devices count up. */
export const DeviceId = z.number().int().min(1).max(127);
export type DeviceId = z.infer<typeof DeviceId>;

/** A message id in Cloud API's format: 'wamid.' followed by URL-safe base64. */
export const Wamid = z.string().regex(/^wamid\.[A-Za-z0-9_=-]{8,200}$/, 'not a wamid');
export type Wamid = z.infer<typeof Wamid>;

/** An id chosen by a device for an envelope; the dedupe key on the inbound path. */
export const EnvelopeId = z
  .string()
  .regex(/^[A-Za-z0-9_-]{8,64}$/, 'envelope id must be 8-64 url-safe chars');
export type EnvelopeId = z.infer<typeof EnvelopeId>;

/** Signal protocol address of a user's device. */
export const DeviceAddress = z.object({ wa_id: WaId, device_id: DeviceId }).strict();
export type DeviceAddress = z.infer<typeof DeviceAddress>;

// Padded standard base64: alphabet characters, at most two '=' at the end, a multiple of 4 long. Same
// language as the grouped /^(?:[A-Za-z0-9+/]{4})*(?:..==|...=)?$/, but one flat character-class scan,
// which profiled several times faster on ciphertext-sized strings (every envelope is checked twice).
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;

/** Standard base64 (binary fields of payloads: keys, ciphertexts). */
export const Base64 = z
  .string()
  .max(512 * 1024)
  .regex(BASE64_CHARS, 'invalid base64')
  .refine((s) => s.length % 4 === 0, 'invalid base64');
export type Base64 = z.infer<typeof Base64>;

export const IsoTimestamp = z.iso.datetime({ offset: true });

/** Region code for Local Storage (Cloud API's data_localization_region), e.g. "DE", "IN". */
export const RegionCode = z.string().regex(/^[A-Z]{2}$/, 'region must be a 2-letter upper-case code');
export type RegionCode = z.infer<typeof RegionCode>;
