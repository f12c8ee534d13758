import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  randomUUID,
  scrypt,
  timingSafeEqual,
} from 'node:crypto';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt) as (pw: string, salt: Buffer, len: number) => Promise<Buffer>;
const IV = 12;
const TAG = 16;

/**
 * Every use of node:crypto in the service, behind one adapter: tokens and ids, hashing of credentials,
 * AES-256-GCM for what must be readable again (app secrets, queued webhook bodies), HMAC for webhooks.
 */
export class CryptoAdapter {
  randomToken(bytes = 32): string {
    return randomBytes(bytes).toString('base64url');
  }
  randomKey(): Buffer {
    return randomBytes(32);
  }
  uuid(): string {
    return randomUUID();
  }
  /** Access tokens are 256-bit random, so one fast hash is enough to make the stored form useless. */
  sha256Hex(value: string): string {
    return createHash('sha256').update(value).digest('hex');
  }
  hmacSha256Hex(secret: string, data: Buffer): string {
    return createHmac('sha256', secret).update(data).digest('hex');
  }
  /** Constant-time comparison of two secrets of any length (compares their digests). */
  safeEqual(a: string, b: string): boolean {
    return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
  }
  /** PINs are short: a slow, salted hash. */
  async hashPin(pin: string): Promise<string> {
    const salt = randomBytes(16);
    const h = await scryptAsync(pin, salt, 32);
    return `scrypt$${salt.toString('base64')}$${h.toString('base64')}`;
  }
  async verifyPin(pin: string, stored: string): Promise<boolean> {
    const [, salt, hash] = stored.split('$');
    const h = await scryptAsync(pin, Buffer.from(salt, 'base64'), 32);
    return timingSafeEqual(h, Buffer.from(hash, 'base64'));
  }
  /** AES-256-GCM; `aad` binds the ciphertext to its row so it cannot be moved to another one. */
  seal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
    const iv = randomBytes(IV);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(Buffer.from(aad));
    const body = Buffer.concat([c.update(plaintext), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]);
  }
  open(key: Buffer, sealed: Buffer, aad: string): Buffer {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(sealed.subarray(IV, IV + TAG));
    return Buffer.concat([d.update(sealed.subarray(IV + TAG)), d.final()]);
  }
}
