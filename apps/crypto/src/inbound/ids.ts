import { hash } from 'node:crypto';
import type { DeviceEnvelope } from '@relay/protocol';

/**
 * The wamid of an inbound message is derived from what identifies the envelope, so every process and
 * every redelivery computes the same id: JetStream and all consumers dedupe a re-emission by it.
 */
export function inboundWamid(e: Pick<DeviceEnvelope, 'phone_number_id' | 'from' | 'envelope_id'>): string {
  // crypto.hash: one-shot, several times cheaper than createHash for short inputs.
  const h = hash(
    'sha256',
    `${e.phone_number_id}\n${e.from.wa_id}\n${e.from.device_id}\n${e.envelope_id}`,
    'buffer',
  );
  return `wamid.${h.subarray(0, 24).toString('base64url')}`;
}

export const inboundFailureMsgId = (wamid: string) => `${wamid}.failure`;

/** SHA-256 (hex) of a serialized identity public key, as Cloud API's identity check exposes it. */
export const identityKeyHash = (key: Uint8Array) => hash('sha256', key, 'hex');
