import { Inject, Injectable } from '@nestjs/common';
import { BF_CONFIG, CRYPTO } from '../common/tokens';
import { CLOCK, NatsBus, type Clock } from '@relay/platform';
import type { EventPayload } from '@relay/protocol';
import type { CryptoAdapter } from '../common/crypto.adapter';
import { CloudApiError } from '../common/errors';
import type { BusinessForwardingConfig } from '../config';
import { QualityService } from '../limits/quality.service';
import { AuthService, type Tenant } from '../tenancy/auth.service';
import { TenantRepository } from '../tenancy/tenant.repository';

/** Cloud API's Local Storage regions (data_localization_region). */
export const REGIONS = ['AU', 'ID', 'IN', 'JP', 'SG', 'KR', 'DE', 'CH', 'GB', 'BR', 'BH', 'ZA', 'AE', 'CA'];
const REG_WINDOW_MS = 72 * 3600_000;
const REG_LIMIT = 10;

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** GET /{number}, register, deregister and settings, as Cloud API serves them. */
@Injectable()
export class PhoneNumberService {
  constructor(
    @Inject(BF_CONFIG) private readonly config: BusinessForwardingConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(CRYPTO) private readonly crypto: CryptoAdapter,
    @Inject(NatsBus) private readonly bus: NatsBus,
    private readonly tenants: TenantRepository,
    private readonly quality: QualityService,
    private readonly auth: AuthService,
  ) {}

  async info({ number }: Tenant) {
    const q = await this.quality.quality(number.phone_number_id);
    return {
      id: number.phone_number_id,
      display_phone_number: number.display_phone_number,
      verified_name: number.verified_name,
      quality_rating: q.rating,
      code_verification_status: 'VERIFIED',
      name_status: 'APPROVED',
      platform_type: number.registered ? 'CLOUD_API' : 'NOT_APPLICABLE',
      throughput: {
        level: (number.throughput_mps ?? this.config.DEFAULT_THROUGHPUT_MPS) > 80 ? 'HIGH' : 'STANDARD',
      },
    };
  }

  async register({ business, number }: Tenant, body: unknown): Promise<{ success: true }> {
    if (!isObj(body)) throw new CloudApiError(100, 'The request body must be a JSON object.');
    if (body.messaging_product === undefined)
      throw new CloudApiError(131008, 'The parameter messaging_product is required.');
    if (body.messaging_product !== 'whatsapp')
      throw new CloudApiError(131009, "messaging_product must be 'whatsapp'.");
    if (body.pin === undefined) throw new CloudApiError(131008, 'The parameter pin is required.');
    if (typeof body.pin !== 'string' || !/^\d{6}$/.test(body.pin)) {
      throw new CloudApiError(100, 'Invalid PIN format. PIN must be exactly 6 digits.');
    }
    const region = body.data_localization_region;
    if (region !== undefined && (typeof region !== 'string' || !REGIONS.includes(region))) {
      throw new CloudApiError(100, `Param data_localization_region must be one of ${REGIONS.join(', ')}.`);
    }
    if (number.pin_hash && !(await this.crypto.verifyPin(body.pin, number.pin_hash))) {
      throw new CloudApiError(133005, 'Two step verification PIN mismatch.');
    }
    await this.countRegistration(number.phone_number_id);
    const dataRegion = (region as string | undefined) ?? number.data_localization_region ?? undefined;
    await this.tenants.updateNumber(number.phone_number_id, {
      registered: true,
      data_localization_region: dataRegion ?? null,
      pin_hash: number.pin_hash ?? (await this.crypto.hashPin(body.pin)),
    });
    this.auth.forgetAll();
    const payload: EventPayload<'business.number_registered'> = {
      phone_number_id: number.phone_number_id,
      waba_id: business.waba_id,
      display_phone_number: number.display_phone_number.slice(0, 32),
      ...(dataRegion ? { data_localization_region: dataRegion } : {}),
      retention_days: business.retention_days ?? this.config.RETENTION_DAYS,
      at: this.clock.now().toISOString(),
    };
    const tokens = { phone_number_id: number.phone_number_id };
    await this.announce(() =>
      this.bus.publish(
        'business.number_registered',
        tokens,
        payload,
        this.msgId('reg', tokens.phone_number_id),
      ),
    );
    return { success: true };
  }

  async deregister({ business, number }: Tenant): Promise<{ success: true }> {
    if (!number.registered) throw new CloudApiError(133010, 'The phone number is not registered.');
    await this.countRegistration(number.phone_number_id);
    await this.tenants.updateNumber(number.phone_number_id, { registered: false });
    this.auth.forgetAll();
    const payload = {
      phone_number_id: number.phone_number_id,
      waba_id: business.waba_id,
      at: this.clock.now().toISOString(),
    };
    await this.announce(() =>
      this.bus.publish(
        'business.number_deregistered',
        { phone_number_id: payload.phone_number_id },
        payload,
        this.msgId('dereg', payload.phone_number_id),
      ),
    );
    return { success: true };
  }

  settings({ number }: Tenant) {
    return {
      calling: {
        status: 'disabled',
        call_icon_visibility: 'hidden',
        ip_addresses: { default: [] as string[] },
        callback_permission_status: 'disabled',
      },
      storage_configuration: number.data_localization_region
        ? { status: 'in_country_storage_enabled', data_localization_region: number.data_localization_region }
        : { status: 'default' },
      user_identity_change: { enable_identity_key_check: number.identity_key_check },
    };
  }

  /** Settings we have: Local Storage region (only while unregistered, as Cloud API) and the identity check. */
  async updateSettings({ number }: Tenant, body: unknown): Promise<{ success: true }> {
    if (!isObj(body)) throw new CloudApiError(100, 'The request body must be a JSON object.');
    const storage = body.storage_configuration;
    const identity = body.user_identity_change;
    if (storage === undefined && identity === undefined) {
      throw new CloudApiError(
        100,
        'One feature setting must be specified (storage_configuration or user_identity_change).',
      );
    }
    const patch: { data_localization_region?: string | null; identity_key_check?: boolean } = {};
    if (storage !== undefined) {
      if (!isObj(storage)) throw new CloudApiError(100, 'Param storage_configuration must be an object.');
      if (number.registered) {
        throw new CloudApiError(100, 'Local storage can only be changed while the number is deregistered.');
      }
      if (storage.status === 'IN_COUNTRY_STORAGE_ENABLED') {
        const r = storage.data_localization_region;
        if (typeof r !== 'string' || !REGIONS.includes(r)) {
          throw new CloudApiError(
            100,
            `Param data_localization_region must be one of ${REGIONS.join(', ')}.`,
          );
        }
        patch.data_localization_region = r;
      } else if (storage.status === 'IN_COUNTRY_STORAGE_DISABLED') {
        patch.data_localization_region = null;
      } else {
        throw new CloudApiError(
          100,
          'Param storage_configuration.status must be IN_COUNTRY_STORAGE_ENABLED or IN_COUNTRY_STORAGE_DISABLED.',
        );
      }
    }
    if (identity !== undefined) {
      if (!isObj(identity) || typeof identity.enable_identity_key_check !== 'boolean') {
        throw new CloudApiError(
          100,
          'Param user_identity_change.enable_identity_key_check must be a boolean.',
        );
      }
      patch.identity_key_check = identity.enable_identity_key_check;
    }
    await this.tenants.updateNumber(number.phone_number_id, patch);
    this.auth.forgetAll();
    return { success: true };
  }

  private async countRegistration(phoneNumberId: string): Promise<void> {
    const now = this.clock.now();
    const n = await this.tenants.recordRegistration(
      phoneNumberId,
      now,
      new Date(now.getTime() - REG_WINDOW_MS),
    );
    if (n > REG_LIMIT) {
      throw new CloudApiError(
        133016,
        'Account register or deregister rate limit exceeded: 10 requests per 72 hours.',
      );
    }
  }

  /** The state change is saved first; a failed announce is answered 131000 and the client retries. */
  private async announce(publish: () => Promise<unknown>): Promise<void> {
    try {
      await publish();
    } catch {
      throw new CloudApiError(131000, 'The change was saved but could not be announced. Please retry.');
    }
  }

  private msgId(kind: string, phoneNumberId: string): { msgId: string } {
    return { msgId: `${kind}:${phoneNumberId}:${this.crypto.randomToken(8)}` };
  }
}
