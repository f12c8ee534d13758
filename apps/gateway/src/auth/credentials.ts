import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { DeviceAddress } from '@relay/protocol';

/**
 * Device credentials: username "<wa_id>.<device_id>", password = 32 random bytes (base64url). The
 * secret has 256 bits of entropy, so a fast SHA-256 is as safe as a slow KDF for the stored hash.
 */
export function newDeviceSecret(): { password: string; hash: Buffer } {
  const password = randomBytes(32).toString('base64url');
  return { password, hash: hashSecret(password) };
}

export function hashSecret(password: string): Buffer {
  return createHash('sha256').update(password, 'utf8').digest();
}

export function secretMatches(password: string, hash: Buffer): boolean {
  const h = hashSecret(password);
  return h.length === hash.length && timingSafeEqual(h, hash);
}

export interface BasicCredentials {
  waId: string;
  deviceId: number;
  password: string;
}

/** Parses "Basic base64(<wa_id>.<device_id>:<password>)"; undefined for anything else. */
export function parseBasicAuth(header: string | undefined): BasicCredentials | undefined {
  if (!header || header.length > 512) return undefined;
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header.trim());
  if (!m) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  const [waId, dev] = text.slice(0, colon).split('.');
  const addr = DeviceAddress.safeParse({ wa_id: waId, device_id: Number(dev) });
  if (!addr.success || !/^\d{1,3}$/.test(dev ?? '')) return undefined;
  return { waId: addr.data.wa_id, deviceId: addr.data.device_id, password: text.slice(colon + 1) };
}

/** A verification code and its stored form (salted with the session id: codes are short-lived). */
export function newVerificationCode(): string {
  return String(randomBytes(4).readUInt32BE(0) % 1_000_000).padStart(6, '0');
}

export function hashCode(sessionId: string, code: string): Buffer {
  return createHash('sha256').update(`${sessionId}:${code}`, 'utf8').digest();
}
