import { z } from 'zod';
import { Base64, DeviceId, IsoTimestamp, WaId } from '../ids';

/** HTTP bodies of the device API (docs/device-protocol.md, protocol v1). */

export const DEVICE_PROTOCOL_VERSION = 1;

/** Key ids are 1..2^24-1 (Signal's range); 0 is reserved. */
export const DeviceKeyId = z.number().int().min(1).max(0xffffff);

const EcPublicKey = Base64.refine((s) => s.length >= 44 && s.length <= 48, 'EC public key must be 33 bytes');
const KemPublicKey = Base64.refine(
  (s) => s.length >= 2000 && s.length <= 2200,
  'Kyber public key must be 1569 bytes',
);
const Signature = Base64.refine((s) => s.length === 88, 'signature must be 64 bytes');

export const SignedEcPreKey = z
  .object({ id: DeviceKeyId, public_key: EcPublicKey, signature: Signature })
  .strict();
export const OneTimeEcPreKey = z.object({ id: DeviceKeyId, public_key: EcPublicKey }).strict();
export const SignedKyberPreKey = z
  .object({ id: DeviceKeyId, public_key: KemPublicKey, signature: Signature })
  .strict();
export type SignedEcPreKey = z.infer<typeof SignedEcPreKey>;
export type OneTimeEcPreKey = z.infer<typeof OneTimeEcPreKey>;
export type SignedKyberPreKey = z.infer<typeof SignedKyberPreKey>;

export const MAX_PREKEYS_PER_UPLOAD = 100;

export const CreateVerificationRequest = z.object({ wa_id: WaId }).strict();
export const CreateVerificationResponse = z
  .object({ session_id: z.uuid(), expires_at: IsoTimestamp, demo_code: z.string().optional() })
  .strict();
export type CreateVerificationResponse = z.infer<typeof CreateVerificationResponse>;

export const SubmitCodeRequest = z
  .object({ code: z.string().regex(/^\d{6}$/, 'code must be 6 digits') })
  .strict();

export const RegisterDeviceRequest = z
  .object({
    session_id: z.uuid(),
    registration_id: z.number().int().min(1).max(16380),
    identity_key: EcPublicKey,
    signed_prekey: SignedEcPreKey,
    kyber_last_resort_prekey: SignedKyberPreKey,
    name: z.string().max(64).optional(),
  })
  .strict();
export type RegisterDeviceRequest = z.infer<typeof RegisterDeviceRequest>;
export const RegisterDeviceResponse = z
  .object({ wa_id: WaId, device_id: DeviceId, password: z.string() })
  .strict();
export type RegisterDeviceResponse = z.infer<typeof RegisterDeviceResponse>;

export const UploadKeysRequest = z
  .object({
    signed_prekey: SignedEcPreKey.optional(),
    prekeys: z.array(OneTimeEcPreKey).max(MAX_PREKEYS_PER_UPLOAD).optional(),
    kyber_prekeys: z.array(SignedKyberPreKey).max(MAX_PREKEYS_PER_UPLOAD).optional(),
    kyber_last_resort_prekey: SignedKyberPreKey.optional(),
  })
  .strict();
export type UploadKeysRequest = z.infer<typeof UploadKeysRequest>;

export const KeyCounts = z
  .object({ prekeys: z.number().int().nonnegative(), kyber_prekeys: z.number().int().nonnegative() })
  .strict();
export type KeyCounts = z.infer<typeof KeyCounts>;

export const DeviceInfo = z
  .object({
    device_id: DeviceId,
    name: z.string().nullable(),
    created_at: IsoTimestamp,
    last_seen_at: IsoTimestamp.nullable(),
  })
  .strict();
export const DeviceListBody = z.object({ devices: z.array(DeviceInfo) }).strict();

export const DEVICE_HTTP_ERROR_CODES = [
  'invalid_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'payload_too_large',
  'invalid_signature',
  'rate_limited',
  'verification_failed',
  'unavailable',
  'internal',
] as const;
export type DeviceHttpErrorCode = (typeof DEVICE_HTTP_ERROR_CODES)[number];

/** Body of every HTTP error of the device API. */
export const DeviceHttpError = z
  .object({
    error: z
      .object({
        code: z.enum(DEVICE_HTTP_ERROR_CODES),
        message: z.string(),
        retry_after_ms: z.number().int().nonnegative().optional(),
      })
      .strict(),
  })
  .strict();
export type DeviceHttpError = z.infer<typeof DeviceHttpError>;
