import { Inject, Injectable } from '@nestjs/common';
import type { z } from 'zod';
import { CLOCK, type Clock } from '@relay/platform';
import { BF_CONFIG, CRYPTO } from '../common/tokens';
import type { CryptoAdapter } from '../common/crypto.adapter';
import { AdminError } from '../common/errors';
import type { BusinessForwardingConfig } from '../config';
import { QualityService } from '../limits/quality.service';
import { AuthService } from '../tenancy/auth.service';
import { DataKeys } from '../tenancy/data-keys.service';
import {
  TenantRepository,
  type BusinessRow,
  type NumberRow,
  type TokenRow,
} from '../tenancy/tenant.repository';
import type {
  CreateBusiness,
  CreateNumber,
  IssueToken,
  PatchBusiness,
  PatchNumber,
  PatchToken,
  RotateSecret,
} from './admin.schemas';

const notFound = (what: string) => new AdminError(404, 'not_found', `${what} not found`);

/** Operator management of businesses, numbers, access tokens and app secrets. Secrets leave once. */
@Injectable()
export class TenantAdminService {
  constructor(
    @Inject(BF_CONFIG) private readonly config: BusinessForwardingConfig,
    @Inject(CRYPTO) private readonly crypto: CryptoAdapter,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly tenants: TenantRepository,
    private readonly keys: DataKeys,
    private readonly auth: AuthService,
    private readonly quality: QualityService,
  ) {}

  async createBusiness(b: z.infer<typeof CreateBusiness>) {
    const secret = b.app_secret ?? this.crypto.randomToken(32);
    const { key, wrapped } = this.keys.newKey(b.waba_id);
    const created = await this.tenants.insertBusiness({
      waba_id: b.waba_id,
      name: b.name,
      messaging_limit: b.messaging_limit ?? null,
      retention_days: b.retention_days ?? null,
      data_key_wrapped: wrapped,
      app_secret_enc: this.keys.sealWith(key, Buffer.from(secret), `appsecret:${b.waba_id}`),
    });
    if (!created) throw new AdminError(409, 'conflict', `business ${b.waba_id} already exists`);
    return { ...(await this.business(b.waba_id)), ...(b.app_secret ? {} : { app_secret: secret }) };
  }

  async business(wabaId: string) {
    const b = await this.tenants.business(wabaId);
    if (!b) throw notFound('business');
    const [numbers, sub] = await Promise.all([
      this.tenants.numbersOf(wabaId),
      this.tenants.subscription(wabaId),
    ]);
    return {
      ...this.businessView(b),
      phone_numbers: numbers.map((n) => n.phone_number_id),
      webhook: sub
        ? {
            callback_url: sub.callback_url,
            max_concurrency: sub.max_concurrency,
            max_events_per_post: sub.max_events_per_post,
            timeout_ms: sub.timeout_ms,
            verified_at: sub.verified_at,
          }
        : null,
    };
  }

  async listBusinesses() {
    return { data: (await this.tenants.listBusinesses()).map((b) => this.businessView(b)) };
  }

  async patchBusiness(wabaId: string, p: z.infer<typeof PatchBusiness>) {
    if (!(await this.tenants.updateBusiness(wabaId, p))) throw notFound('business');
    this.auth.forgetAll();
    return this.business(wabaId);
  }

  async rotateSecret(wabaId: string, r: z.infer<typeof RotateSecret>) {
    const secret = r.app_secret ?? this.crypto.randomToken(32);
    const sealed = await this.keys.seal(wabaId, Buffer.from(secret), `appsecret:${wabaId}`).catch(() => {
      throw notFound('business');
    });
    await this.tenants.updateBusiness(wabaId, { app_secret_enc: sealed });
    this.auth.forgetAll();
    return r.app_secret ? { rotated: true } : { rotated: true, app_secret: secret };
  }

  async addNumber(wabaId: string, n: z.infer<typeof CreateNumber>) {
    const b = await this.tenants.business(wabaId);
    if (!b) throw notFound('business');
    const ok = await this.tenants.insertNumber({
      phone_number_id: n.phone_number_id,
      waba_id: wabaId,
      display_phone_number: n.display_phone_number,
      verified_name: n.verified_name ?? b.name,
      data_localization_region: n.data_localization_region ?? null,
    });
    if (!ok) throw new AdminError(409, 'conflict', `phone number ${n.phone_number_id} already exists`);
    return this.number(n.phone_number_id);
  }

  async number(phoneNumberId: string) {
    const n = await this.tenants.number(phoneNumberId);
    if (!n) throw notFound('phone number');
    return this.numberView(n);
  }

  async numbers(wabaId: string) {
    if (!(await this.tenants.business(wabaId))) throw notFound('business');
    const list = await this.tenants.numbersOf(wabaId);
    return { data: await Promise.all(list.map((n) => this.numberView(n))) };
  }

  async patchNumber(phoneNumberId: string, p: z.infer<typeof PatchNumber>) {
    if (!(await this.tenants.updateNumber(phoneNumberId, p))) throw notFound('phone number');
    this.auth.forgetAll();
    return this.number(phoneNumberId);
  }

  async issueToken(wabaId: string, t: z.infer<typeof IssueToken>) {
    if (!(await this.tenants.business(wabaId))) throw notFound('business');
    const token = `rly_${this.crypto.randomToken(32)}`;
    const id = this.crypto.uuid();
    const expires = t.expires_in_seconds
      ? new Date(this.clock.now().getTime() + t.expires_in_seconds * 1000)
      : null;
    await this.tenants.insertToken({
      id,
      waba_id: wabaId,
      token_hash: this.crypto.sha256Hex(token),
      label: t.label ?? '',
      expires_at: expires,
    });
    return { id, access_token: token, label: t.label ?? '', expires_at: expires };
  }

  async tokens(wabaId: string) {
    if (!(await this.tenants.business(wabaId))) throw notFound('business');
    return { data: (await this.tenants.tokensOf(wabaId)).map((t) => this.tokenView(t)) };
  }

  async patchToken(wabaId: string, id: string, p: z.infer<typeof PatchToken>) {
    const ok = await this.tenants.updateToken(wabaId, id, {
      expires_at: p.expires_at ? new Date(p.expires_at) : null,
    });
    if (!ok) throw notFound('token');
    this.auth.forgetAll();
    return { id, expires_at: p.expires_at };
  }

  async revokeToken(wabaId: string, id: string) {
    if (!(await this.tenants.updateToken(wabaId, id, { revoked_at: this.clock.now() })))
      throw notFound('token');
    this.auth.forgetAll();
    return { id, revoked: true };
  }

  private businessView(b: BusinessRow) {
    return {
      waba_id: b.waba_id,
      name: b.name,
      status: b.status,
      messaging_limit: b.messaging_limit ?? this.config.DEFAULT_MESSAGING_LIMIT,
      retention_days: b.retention_days ?? this.config.RETENTION_DAYS,
      created_at: b.created_at,
    };
  }

  private async numberView(n: NumberRow) {
    const q = await this.quality.quality(n.phone_number_id);
    return {
      phone_number_id: n.phone_number_id,
      waba_id: n.waba_id,
      display_phone_number: n.display_phone_number,
      verified_name: n.verified_name,
      data_localization_region: n.data_localization_region,
      registered: n.registered,
      nats_delivery: n.nats_delivery,
      quality_rating: q.rating,
      quality_score: q.score,
      sending_blocked: q.blocked,
      limits: {
        throughput_mps: n.throughput_mps ?? this.config.DEFAULT_THROUGHPUT_MPS,
        pair_burst: n.pair_burst ?? this.config.DEFAULT_PAIR_BURST,
        pair_refill_ms: n.pair_refill_ms ?? this.config.DEFAULT_PAIR_REFILL_MS,
      },
    };
  }

  private tokenView(t: TokenRow) {
    return {
      id: t.id,
      label: t.label,
      expires_at: t.expires_at,
      revoked_at: t.revoked_at,
      created_at: t.created_at,
    };
  }
}
