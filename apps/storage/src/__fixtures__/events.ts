import { randomBytes } from 'node:crypto';
import type { EventPayload } from '@relay/protocol';

export const newWamid = () => `wamid.${randomBytes(12).toString('base64url')}`;
export const newWaId = () => `49${String(Math.floor(Math.random() * 1e10)).padStart(10, '0')}`;
export const newNumberId = () => String(100000 + Math.floor(Math.random() * 9e8));

export function registered(
  phoneNumberId: string,
  at: Date,
  opts: { region?: string; retentionDays?: number } = {},
): EventPayload<'business.number_registered'> {
  return {
    phone_number_id: phoneNumberId,
    waba_id: '777',
    display_phone_number: '+1 555 0100',
    data_localization_region: opts.region,
    retention_days: opts.retentionDays ?? 30,
    at: at.toISOString(),
  };
}

export function inbound(
  phoneNumberId: string,
  waId: string,
  body: string,
  at: Date,
  profileName = 'Alice Example',
): EventPayload<'inbound.message'> {
  return {
    wamid: newWamid(),
    envelope_id: randomBytes(9).toString('base64url'),
    phone_number_id: phoneNumberId,
    from: { wa_id: waId, device_id: 1 },
    profile_name: profileName,
    identity_key_hash: randomBytes(32).toString('hex'),
    identity_changed: false,
    sent_at: at.getTime(),
    received_at: at.toISOString(),
    content: { type: 'text', text: { body } },
  };
}

export function outbound(
  phoneNumberId: string,
  to: string,
  body: string,
  at: Date,
): EventPayload<'outbound.request'> {
  return {
    wamid: newWamid(),
    phone_number_id: phoneNumberId,
    to,
    content: { type: 'text', text: { body } },
    accepted_at: at.toISOString(),
  };
}

export function ciphertext(
  o: { wamid: string; phone_number_id: string; to: string },
  deviceId: number,
  at: Date,
  bytes: Buffer = randomBytes(64),
): EventPayload<'delivery.ciphertext'> {
  return {
    wamid: o.wamid,
    phone_number_id: o.phone_number_id,
    to: { wa_id: o.to, device_id: deviceId },
    type: 'whisper',
    ciphertext: bytes.toString('base64'),
    created_at: at.toISOString(),
  };
}

export function status(
  o: { wamid: string; phone_number_id: string; to: string },
  value: 'sent' | 'delivered' | 'read' | 'failed',
  at: Date,
): EventPayload<'status.update'> {
  return {
    wamid: o.wamid,
    phone_number_id: o.phone_number_id,
    recipient_id: o.to,
    status: value,
    timestamp: at.toISOString(),
  };
}
