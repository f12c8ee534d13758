import { z } from 'zod';
import { Base64, DeviceId, PhoneNumberId, WaId } from '../ids';

const KeyId = z.number().int().min(0).max(0xffffff);

/**
 * A Signal prekey bundle as libsignal's PreKeyBundle.new takes it. Kyber is mandatory in libsignal 0.103;
 * the one-time EC prekey is optional (absent when the pool is empty).
 */
export const PreKeyBundle = z
  .object({
    registration_id: z.number().int().min(1).max(16380),
    device_id: DeviceId,
    identity_key: Base64,
    signed_prekey: z.object({ id: KeyId, public_key: Base64, signature: Base64 }).strict(),
    prekey: z.object({ id: KeyId, public_key: Base64 }).strict().optional(),
    kyber_prekey: z
      .object({ id: KeyId, public_key: Base64, signature: Base64, last_resort: z.boolean() })
      .strict(),
  })
  .strict();
export type PreKeyBundle = z.infer<typeof PreKeyBundle>;

/** gateway -> crypto: a device wants to start a session with a business. */
export const BusinessBundleRequest = z
  .object({
    phone_number_id: PhoneNumberId,
    requester: z.object({ wa_id: WaId, device_id: DeviceId }).strict(),
  })
  .strict();
export type BusinessBundleRequest = z.infer<typeof BusinessBundleRequest>;

/**
 * crypto -> gateway: bundles of a user's devices, one-time keys consumed. `device_ids` narrows the
 * request to those devices; `known_device_ids` names devices the caller already has sessions with: they
 * get no bundle (no one-time key is spent on them), and the response lists every current device in
 * `device_ids`, so the caller learns both added and removed devices.
 */
export const DeviceBundlesRequest = z
  .object({
    wa_id: WaId,
    phone_number_id: PhoneNumberId,
    device_ids: z.array(DeviceId).max(128).optional(),
    known_device_ids: z.array(DeviceId).max(128).optional(),
  })
  .strict();
export const DeviceBundlesResponse = z
  .object({
    wa_id: WaId,
    devices: z.array(PreKeyBundle).max(128),
    /** Every current device of the user; present when the request named `known_device_ids`. */
    device_ids: z.array(DeviceId).max(128).optional(),
  })
  .strict();
export type DeviceBundlesResponse = z.infer<typeof DeviceBundlesResponse>;

/** crypto -> gateway: the user's current device list (to detect added or removed devices). */
export const DeviceListRequest = z.object({ wa_id: WaId }).strict();
export const DeviceListResponse = z
  .object({
    wa_id: WaId,
    devices: z.array(z.object({ device_id: DeviceId, registration_id: z.number().int() })),
  })
  .strict();
