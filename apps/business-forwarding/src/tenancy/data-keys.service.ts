import { Inject, Injectable } from '@nestjs/common';
import { BF_CONFIG, CRYPTO } from '../common/tokens';
import type { CryptoAdapter } from '../common/crypto.adapter';
import type { BusinessForwardingConfig } from '../config';
import { TenantRepository } from './tenant.repository';

/**
 * Envelope encryption: each business has its own data key, stored wrapped by the master key. App
 * secrets, verify tokens and queued webhook bodies are sealed with it; deleting the business row
 * deletes the key and makes whatever is left unreadable (crypto-shredding).
 */
@Injectable()
export class DataKeys {
  private readonly master: Buffer;
  private readonly cache = new Map<string, Buffer>();

  constructor(
    @Inject(BF_CONFIG) config: BusinessForwardingConfig,
    @Inject(CRYPTO) private readonly crypto: CryptoAdapter,
    private readonly tenants: TenantRepository,
  ) {
    this.master = Buffer.from(config.MASTER_KEY.slice(config.MASTER_KEY.lastIndexOf(':') + 1), 'base64');
  }

  newKey(wabaId: string): { key: Buffer; wrapped: Buffer } {
    const key = this.crypto.randomKey();
    return { key, wrapped: this.crypto.seal(this.master, key, `dek:${wabaId}`) };
  }

  async key(wabaId: string): Promise<Buffer> {
    const cached = this.cache.get(wabaId);
    if (cached) return cached;
    const b = await this.tenants.business(wabaId);
    if (!b) throw new Error(`no data key for business ${wabaId}`);
    const key = this.crypto.open(this.master, b.data_key_wrapped, `dek:${wabaId}`);
    this.cache.set(wabaId, key);
    return key;
  }

  async seal(wabaId: string, plaintext: Buffer, aad: string): Promise<Buffer> {
    return this.crypto.seal(await this.key(wabaId), plaintext, aad);
  }

  async open(wabaId: string, sealed: Buffer, aad: string): Promise<Buffer> {
    return this.crypto.open(await this.key(wabaId), sealed, aad);
  }

  sealWith(key: Buffer, plaintext: Buffer, aad: string): Buffer {
    return this.crypto.seal(key, plaintext, aad);
  }

  forget(wabaId: string): void {
    this.cache.delete(wabaId);
  }
}
