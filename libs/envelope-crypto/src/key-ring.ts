import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { KEY_BYTES, open, seal } from './aead';
import type { DataKeyStore } from './data-key-store';
import type { KeyProvider } from './key-provider';

export class DataKeyDestroyedError extends Error {
  override readonly name = 'DataKeyDestroyedError';
}

export interface KeyRingOptions {
  /** How long an unwrapped data key stays in memory (a destroyed key is unusable everywhere after this). */
  cacheTtlMs?: number;
  now?: () => number;
}

/**
 * Envelope encryption: each tenant (a business) has its own random AES-256 data key, stored only wrapped
 * by the master key. Destroying the wrapped key makes everything sealed under it unreadable
 * (crypto-shredding), including copies in backups.
 */
export class KeyRing {
  private readonly cache = new Map<string, { key: KeyObject; until: number }>();
  private readonly ttl: number;
  private readonly now: () => number;

  constructor(
    private readonly store: DataKeyStore,
    private readonly provider: KeyProvider,
    opts: KeyRingOptions = {},
  ) {
    this.ttl = opts.cacheTtlMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  async encrypt(tenant: string, plaintext: Uint8Array, aad: string): Promise<Buffer> {
    return seal(await this.keyFor(tenant, true), plaintext, `${tenant}|${aad}`);
  }

  async decrypt(tenant: string, sealed: Uint8Array, aad: string): Promise<Buffer> {
    return open(await this.keyFor(tenant, false), sealed, `${tenant}|${aad}`);
  }

  /**
   * Loads (and caches) the tenant's data key if one exists, never creating it; returns whether it exists.
   * Lets a caller fetch keys before opening a database transaction instead of from inside one.
   */
  async load(tenant: string): Promise<boolean> {
    try {
      await this.keyFor(tenant, false);
      return true;
    } catch (err) {
      if (err instanceof DataKeyDestroyedError) return false;
      throw err;
    }
  }

  /** Crypto-shredding: removes the tenant's data key; returns whether one existed. */
  async destroy(tenant: string): Promise<boolean> {
    this.cache.delete(tenant);
    return this.store.delete(tenant);
  }

  /** Forgets cached keys (e.g. when another replica destroyed one). */
  evict(tenant?: string): void {
    if (tenant === undefined) this.cache.clear();
    else this.cache.delete(tenant);
  }

  /**
   * Rewraps every data key not yet under the provider's current master key. Online: readers keep working
   * because the old master key stays configured (as previous) until this reports 0 remaining.
   */
  async rotate(batchSize = 100): Promise<{ rewrapped: number }> {
    let rewrapped = 0;
    for (;;) {
      const batch = await this.store.listNotWrappedWith(this.provider.currentKeyId, batchSize);
      if (batch.length === 0) return { rewrapped };
      for (const rec of batch) {
        const dek = await this.provider.unwrap(rec, rec.tenant);
        const next = await this.provider.wrap(dek, rec.tenant);
        if (await this.store.rewrap(rec.tenant, rec, next)) rewrapped++;
      }
    }
  }

  private async keyFor(tenant: string, create: boolean): Promise<KeyObject> {
    const hit = this.cache.get(tenant);
    if (hit && hit.until > this.now()) return hit.key;
    let rec = await this.store.get(tenant);
    if (!rec) {
      if (!create) throw new DataKeyDestroyedError(`no data key for tenant ${tenant}`);
      const wrapped = await this.provider.wrap(randomBytes(KEY_BYTES), tenant);
      rec = await this.store.insertIfAbsent({ tenant, ...wrapped });
    }
    const key = createSecretKey(await this.provider.unwrap(rec, tenant));
    this.cache.set(tenant, { key, until: this.now() + this.ttl });
    return key;
  }
}
