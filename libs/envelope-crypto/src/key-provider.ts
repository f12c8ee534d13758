import { KEY_BYTES, open, seal } from './aead';

export interface WrappedKey {
  /** Id of the master key that wrapped it (lets rotation find what to rewrap). */
  masterKeyId: string;
  blob: Buffer;
}

/**
 * Wraps and unwraps data keys with a master key. The local provider keeps master keys in process memory
 * from configuration; a cloud KMS adapter implements the same interface (wrap = KMS Encrypt, unwrap =
 * KMS Decrypt) so the master key never leaves the KMS.
 */
export interface KeyProvider {
  readonly currentKeyId: string;
  wrap(dataKey: Buffer, context: string): Promise<WrappedKey>;
  unwrap(wrapped: WrappedKey, context: string): Promise<Buffer>;
}

export class KeyProviderError extends Error {
  override readonly name = 'KeyProviderError';
}

/** Parses "id:base64" entries (comma-separated); each key must be exactly 32 bytes. */
export function parseMasterKeys(spec: string): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  for (const entry of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([A-Za-z0-9_-]{1,32}):([A-Za-z0-9+/=]+)$/.exec(entry);
    if (!m) throw new KeyProviderError('master key entries must look like <id>:<base64 of 32 bytes>');
    const key = Buffer.from(m[2], 'base64');
    if (key.length !== KEY_BYTES) throw new KeyProviderError(`master key "${m[1]}" is not 32 bytes`);
    if (keys.has(m[1])) throw new KeyProviderError(`master key id "${m[1]}" appears twice`);
    keys.set(m[1], key);
  }
  return keys;
}

export class LocalKeyProvider implements KeyProvider {
  readonly currentKeyId: string;
  private readonly keys: Map<string, Buffer>;

  /**
   * @param current "id:base64" — the key new data keys are wrapped with.
   * @param previous older "id:base64" entries still accepted for unwrapping until rotation completes.
   */
  constructor(current: string, previous = '') {
    const cur = parseMasterKeys(current);
    if (cur.size !== 1) throw new KeyProviderError('exactly one current master key is required');
    this.currentKeyId = [...cur.keys()][0];
    this.keys = new Map([...parseMasterKeys(previous), ...cur]);
  }

  async wrap(dataKey: Buffer, context: string): Promise<WrappedKey> {
    const key = this.keys.get(this.currentKeyId) as Buffer;
    return { masterKeyId: this.currentKeyId, blob: seal(key, dataKey, `dek:${context}`) };
  }

  async unwrap(wrapped: WrappedKey, context: string): Promise<Buffer> {
    const key = this.keys.get(wrapped.masterKeyId);
    if (!key) throw new KeyProviderError(`master key "${wrapped.masterKeyId}" is not configured`);
    return open(key, wrapped.blob, `dek:${context}`);
  }
}
