import { randomBytes } from 'node:crypto';
import { EnvelopeDecryptError, open, seal } from './aead';
import { KeyProviderError, LocalKeyProvider, parseMasterKeys } from './key-provider';

const k = () => randomBytes(32);
const spec = (id: string, key = k()) => `${id}:${key.toString('base64')}`;

describe('AES-256-GCM sealing', () => {
  it('round-trips and never leaves the plaintext in the blob', () => {
    const key = k();
    const pt = Buffer.from('hello business, this is secret');
    const blob = seal(key, pt, 'ctx');
    expect(blob.includes(pt)).toBe(false);
    expect(open(key, blob, 'ctx').equals(pt)).toBe(true);
  });

  it('refuses a wrong key, a wrong context, a flipped bit and garbage', () => {
    const key = k();
    const blob = seal(key, Buffer.from('x'), 'tenant-a|row-1');
    expect(() => open(k(), blob, 'tenant-a|row-1')).toThrow(EnvelopeDecryptError);
    expect(() => open(key, blob, 'tenant-b|row-1')).toThrow(EnvelopeDecryptError);
    const tampered = Buffer.from(blob);
    tampered[tampered.length - 1] ^= 1;
    expect(() => open(key, tampered, 'tenant-a|row-1')).toThrow(EnvelopeDecryptError);
    expect(() => open(key, Buffer.from([9, 9, 9]), 'x')).toThrow(EnvelopeDecryptError);
  });
});

describe('LocalKeyProvider', () => {
  it('wraps with the current key and unwraps with previous ones', async () => {
    const oldSpec = spec('m1');
    const before = new LocalKeyProvider(oldSpec);
    const dek = k();
    const w = await before.wrap(dek, 'biz');
    expect(w.masterKeyId).toBe('m1');
    const after = new LocalKeyProvider(spec('m2'), oldSpec);
    expect(after.currentKeyId).toBe('m2');
    expect((await after.unwrap(w, 'biz')).equals(dek)).toBe(true);
    await expect(after.unwrap(w, 'other-biz')).rejects.toThrow(EnvelopeDecryptError);
    await expect(new LocalKeyProvider(spec('m3')).unwrap(w, 'biz')).rejects.toThrow(/not configured/);
  });

  it('rejects malformed master key configuration', () => {
    expect(() => parseMasterKeys('nocolon')).toThrow(KeyProviderError);
    expect(() => parseMasterKeys(`m1:${randomBytes(16).toString('base64')}`)).toThrow(/not 32 bytes/);
    expect(() => new LocalKeyProvider('')).toThrow(/exactly one/);
    expect(() => parseMasterKeys(`${spec('a')},${spec('a')}`)).toThrow(/twice/);
  });
});
