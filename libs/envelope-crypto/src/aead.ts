import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';

/** Format byte of sealed blobs, so the scheme can change without ambiguity. */
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;

export class EnvelopeDecryptError extends Error {
  override readonly name = 'EnvelopeDecryptError';
}

/**
 * AES-256-GCM with a random 96-bit IV. The AAD binds a ciphertext to where it belongs (tenant, table,
 * row id), so a blob copied to another row or tenant does not decrypt.
 * Layout: version(1) | iv(12) | tag(16) | ciphertext.
 */
export function seal(key: Buffer | KeyObject, plaintext: Uint8Array, aad: string): Buffer {
  // A KeyObject (cached by KeyRing) spares Node re-importing the raw key on every call.
  const size = Buffer.isBuffer(key) ? key.length : key.symmetricKeySize;
  if (size !== KEY_BYTES) throw new Error('AES-256-GCM needs a 32-byte key');
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), ct]);
}

export function open(key: Buffer | KeyObject, sealed: Uint8Array, aad: string): Buffer {
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (buf.length < 1 + IV_BYTES + TAG_BYTES || buf[0] !== VERSION) {
    throw new EnvelopeDecryptError('not a sealed blob of a known version');
  }
  const iv = buf.subarray(1, 1 + IV_BYTES);
  const tag = buf.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(buf.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    throw new EnvelopeDecryptError('authentication failed (wrong key, wrong context or tampered data)');
  }
}
