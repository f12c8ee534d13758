import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock } from '@relay/platform';
import { BF_CONFIG, CRYPTO } from '../common/tokens';
import type { CryptoAdapter } from '../common/crypto.adapter';
import { CloudApiError } from '../common/errors';
import type { BusinessForwardingConfig } from '../config';
import { TenantCache } from './tenant-cache.service';
import { TenantRepository, type BusinessRow, type NumberRow } from './tenant.repository';
import { TtlCache } from './ttl-cache';

interface CachedToken {
  wabaId: string;
  expiresAt: number | null;
}

export interface Tenant {
  business: BusinessRow;
  number: NumberRow;
}

/**
 * Business authentication: access tokens are looked up by their SHA-256 and cached for AUTH_CACHE_MS.
 * A revocation made through this process takes effect at once; one made through another replica
 * within AUTH_CACHE_MS. Expiry is exact.
 */
@Injectable()
export class AuthService {
  private readonly tokens: TtlCache<CachedToken | undefined>;

  constructor(
    @Inject(BF_CONFIG) config: BusinessForwardingConfig,
    @Inject(CRYPTO) private readonly crypto: CryptoAdapter,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly tenants: TenantRepository,
    private readonly cache: TenantCache,
  ) {
    this.tokens = new TtlCache(
      () => config.AUTH_CACHE_MS,
      () => this.clock.now().getTime(),
    );
  }

  async authenticate(token: string | undefined): Promise<string> {
    if (!token) throw new CloudApiError(0, 'An access token is required to request this resource.');
    const hash = this.crypto.sha256Hex(token);
    const entry = await this.tokens.get(hash, async () => {
      const row = await this.tenants.tokenByHash(hash);
      if (!row || row.revoked_at) return undefined;
      return { wabaId: row.waba_id, expiresAt: row.expires_at ? new Date(row.expires_at).getTime() : null };
    });
    if (!entry) throw new CloudApiError(190, 'Invalid OAuth access token - Cannot parse access token');
    if (entry.expiresAt !== null && entry.expiresAt <= this.clock.now().getTime()) {
      throw new CloudApiError(190, 'Error validating access token: Session has expired.');
    }
    return entry.wabaId;
  }

  /** The number, if this business owns it: unknown -> 100, someone else's -> 10 (nothing happens). */
  async tenantFor(wabaId: string, phoneNumberId: string): Promise<Tenant> {
    const number = /^\d{1,32}$/.test(phoneNumberId) ? await this.cache.number(phoneNumberId) : undefined;
    const business = number ? await this.cache.business(number.waba_id) : undefined;
    if (!number || !business) {
      throw new CloudApiError(
        100,
        `Unsupported request - Object with ID '${phoneNumberId.slice(0, 40)}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`,
      );
    }
    if (number.waba_id !== wabaId) {
      throw new CloudApiError(10, 'The access token does not have permission for this phone number.');
    }
    return { number, business };
  }

  /** After any change to a token, business or number made through this process. */
  forgetAll(): void {
    this.tokens.clear();
    this.cache.forgetAll();
  }
}
