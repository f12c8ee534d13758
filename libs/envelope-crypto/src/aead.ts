import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';

/** Format byte of sealed blobs, so the scheme can change without ambiguity. */
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;

const HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES;

// IVs are cut from a block of CSPRNG output, each 12-byte slice used once: one random draw per
// thousand seals instead of one per seal (sealing runs once per stored message and session update).
const IV_POOL_BYTES = IV_BYTES * 1024;
let ivPool = randomBytes(IV_POOL_BYTES);
let ivAt = 0;
function takeIv(into: Buffer): void {
  if (ivAt + IV_BYTES > IV_POOL_BYTES) {
    ivPool = randomBytes(IV_POOL_BYTES);
    ivAt = 0;
  }
  ivPool.copy(into, 0, ivAt, ivAt + IV_BYTES);
  ivAt += IV_BYTES;
}

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
  const out = Buffer.allocUnsafe(HEADER_BYTES + plaintext.length);
  out[0] = VERSION;
  const iv = out.subarray(1, 1 + IV_BYTES);
  takeIv(iv);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  // GCM is a stream mode: the ciphertext is exactly as long as the plaintext and final() adds nothing.
  const ct = cipher.update(plaintext);
  const rest = cipher.final();
  if (ct.length + rest.length !== plaintext.length) throw new Error('unexpected AES-GCM output length');
  ct.copy(out, HEADER_BYTES);
  rest.copy(out, HEADER_BYTES + ct.length);
  cipher.getAuthTag().copy(out, 1 + IV_BYTES);
  return out;
}

export function open(key: Buffer | KeyObject, sealed: Uint8Array, aad: string): Buffer {
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (buf.length < HEADER_BYTES || buf[0] !== VERSION) {
    throw new EnvelopeDecryptError('not a sealed blob of a known version');
  }
  const iv = buf.subarray(1, 1 + IV_BYTES);
  const tag = buf.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(buf.subarray(HEADER_BYTES)), decipher.final()]);
  } catch {
    throw new EnvelopeDecryptError('authentication failed (wrong key, wrong context or tampered data)');
  }
}
