import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock } from '@relay/platform';
import { BF_CONFIG, CRYPTO } from '../common/tokens';
import type { CryptoAdapter } from '../common/crypto.adapter';
import { CloudApiError } from '../common/errors';
import type { BusinessForwardingConfig } from '../config';
import { TenantRepository, type BusinessRow, type NumberRow } from './tenant.repository';

interface CachedToken {
  wabaId: string;
  expiresAt: number | null;
  cachedUntil: number;
}

export interface Tenant {
  business: BusinessRow;
  number: NumberRow;
}

/**
 * Business authentication: access tokens are looked up by their SHA-256 and cached briefly (the
 * cache time bounds how long a revoked token keeps working in one replica; expiry is exact).
 */
@Injectable()
export class AuthService {
  private readonly cache = new Map<string, CachedToken>();
  private readonly tenants_ = new Map<string, { tenant: Tenant; until: number }>();

  constructor(
    @Inject(BF_CONFIG) private readonly config: BusinessForwardingConfig,
    @Inject(CRYPTO) private readonly crypto: CryptoAdapter,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly tenants: TenantRepository,
  ) {}

  async authenticate(token: string | undefined): Promise<string> {
    if (!token) throw new CloudApiError(0, 'An access token is required to request this resource.');
    const hash = this.crypto.sha256Hex(token);
    const now = this.clock.now().getTime();
    let entry = this.cache.get(hash);
    if (!entry || entry.cachedUntil < now) {
      const row = await this.tenants.tokenByHash(hash);
      if (!row || row.revoked_at) {
        this.cache.delete(hash);
        throw new CloudApiError(190, 'Invalid OAuth access token - Cannot parse access token');
      }
      entry = {
        wabaId: row.waba_id,
        expiresAt: row.expires_at ? new Date(row.expires_at).getTime() : null,
        cachedUntil: now + this.config.AUTH_CACHE_MS,
      };
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(hash, entry);
    }
    if (entry.expiresAt !== null && entry.expiresAt <= now) {
      throw new CloudApiError(190, 'Error validating access token: Session has expired.');
    }
    return entry.wabaId;
  }

  /**
   * The number, if this business owns it: unknown -> 100, someone else's -> 10 (nothing happens).
   * Number and business rows are cached like tokens; changes made through this process drop the cache.
   */
  async tenantFor(wabaId: string, phoneNumberId: string): Promise<Tenant> {
    const now = Date.now();
    const hit = this.tenants_.get(phoneNumberId);
    const tenant = hit && hit.until > now ? hit.tenant : await this.loadTenant(phoneNumberId);
    if (tenant && tenant !== hit?.tenant) {
      if (this.tenants_.size > 10_000) this.tenants_.clear();
      this.tenants_.set(phoneNumberId, { tenant, until: now + this.config.AUTH_CACHE_MS });
    }
    if (!tenant) {
      throw new CloudApiError(
        100,
        `Unsupported request - Object with ID '${phoneNumberId.slice(0, 40)}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`,
      );
    }
    if (tenant.number.waba_id !== wabaId) {
      throw new CloudApiError(10, 'The access token does not have permission for this phone number.');
    }
    return tenant;
  }

  private async loadTenant(phoneNumberId: string): Promise<Tenant | undefined> {
    const number = /^\d{1,32}$/.test(phoneNumberId) ? await this.tenants.number(phoneNumberId) : undefined;
    const business = number ? await this.tenants.business(number.waba_id) : undefined;
    return number && business ? { number, business } : undefined;
  }

  forgetAll(): void {
    this.cache.clear();
    this.tenants_.clear();
  }
}
