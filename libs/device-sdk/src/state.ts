/**
 * Everything a device keeps: its credentials, private keys and Signal sessions. Binary values are
 * base64 strings so any store can keep it as JSON; the store is responsible for encrypting it.
 */
export interface DeviceState {
  v: 1;
  server: string;
  wa_id?: string;
  device_id?: number;
  password?: string;
  registration_id: number;
  identity_private: string;
  next_prekey_id: number;
  next_kyber_id: number;
  next_signed_id: number;
  signed_prekeys: Record<string, string>;
  prekeys: Record<string, string>;
  kyber_prekeys: Record<string, string>;
  kyber_last_resort_ids: number[];
  /** "kyberId:signedId:baseKey" of each use of a last-resort Kyber key (replays are refused). */
  kyber_used: string[];
  sessions: Record<string, string>;
  identities: Record<string, string>;
  /** Signal device id of each business number (from its bundle). */
  business_devices: Record<string, number>;
}

export const MAX_KYBER_USED = 10_000;

export const toB64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** libsignal wants Uint8Array<ArrayBuffer>; Buffers may sit on a shared pool, so copy. */
export function fromB64(s: string): Uint8Array<ArrayBuffer> {
  return bytes(Buffer.from(s, 'base64'));
}

export function bytes(b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(new ArrayBuffer(b.length));
  out.set(b);
  return out;
}
