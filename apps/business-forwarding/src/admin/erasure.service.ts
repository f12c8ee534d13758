import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { z } from 'zod';
import { CLOCK, NatsBus, PermanentError, type Clock, type ConsumerHandle } from '@relay/platform';
import type { EraseCompleted } from '@relay/protocol';
import { CRYPTO } from '../common/tokens';
import type { CryptoAdapter } from '../common/crypto.adapter';
import { AdminError } from '../common/errors';
import { rows } from '../common/sql';
import { AuthService } from '../tenancy/auth.service';
import { DataKeys } from '../tenancy/data-keys.service';
import { TenantRepository } from '../tenancy/tenant.repository';
import type { RequestErasure } from './admin.schemas';

const S = 'business_forwarding';
export const ERASURE_SERVICES = ['business-forwarding', 'crypto', 'storage', 'gateway'] as const;

/**
 * Erasure orders: this service erases its own part at once, publishes business.erase_requested for
 * the others, and collects their business.erase_completed to report the order's state.
 */
@Injectable()
export class ErasureService implements OnApplicationBootstrap, OnApplicationShutdown {
  private handle?: ConsumerHandle;

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(CRYPTO) private readonly crypto: CryptoAdapter,
    private readonly tenants: TenantRepository,
    private readonly keys: DataKeys,
    private readonly auth: AuthService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.handle = await this.bus.consume(
      'business.erase_completed',
      { durable: 'business-forwarding-erase-completed', concurrency: 8 },
      (e) => this.recordPart(e),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.handle?.stop();
  }

  async request(wabaId: string, r: z.infer<typeof RequestErasure>) {
    if (!(await this.tenants.business(wabaId))) throw new AdminError(404, 'not_found', 'business not found');
    const pnids = (await this.tenants.numbersOf(wabaId)).map((n) => n.phone_number_id);
    const requestId = this.crypto.uuid();
    const at = this.clock.now();
    const counts = await this.ds.transaction(async (em) => {
      await em.query(
        `INSERT INTO ${S}.erasures (request_id, waba_id, scope, wa_id, requested_at) VALUES ($1,$2,$3,$4,$5)`,
        [requestId, wabaId, r.scope, r.wa_id ?? null, at],
      );
      return this.eraseOwn(em, wabaId, pnids, r.wa_id);
    });
    if (r.scope === 'business') {
      await this.tenants.deleteBusiness(wabaId);
      this.keys.forget(wabaId);
      this.auth.forgetAll();
    }
    const order = {
      request_id: requestId,
      waba_id: wabaId,
      phone_number_ids: pnids,
      scope: r.scope,
      ...(r.wa_id ? { wa_id: r.wa_id } : {}),
      at: at.toISOString(),
    };
    await this.bus.publish('business.erase_requested', { waba_id: wabaId }, order, {
      msgId: `erase:${requestId}`,
    });
    await this.recordPart({
      request_id: requestId,
      service: 'business-forwarding',
      counts,
      at: at.toISOString(),
    });
    return this.status(requestId);
  }

  async status(requestId: string) {
    if (!/^[0-9a-f-]{36}$/i.test(requestId)) throw new AdminError(404, 'not_found', 'erasure not found');
    const [e] = await rows<{
      request_id: string;
      waba_id: string;
      scope: string;
      wa_id: string | null;
      requested_at: Date;
    }>(this.ds, `SELECT * FROM ${S}.erasures WHERE request_id = $1`, [requestId]);
    if (!e) throw new AdminError(404, 'not_found', 'erasure not found');
    const parts = await rows<{ service: string; counts: Record<string, number>; completed_at: Date }>(
      this.ds,
      `SELECT service, counts, completed_at FROM ${S}.erasure_parts WHERE request_id = $1`,
      [requestId],
    );
    const services = Object.fromEntries(
      ERASURE_SERVICES.map((s) => {
        const p = parts.find((x) => x.service === s);
        return [
          s,
          p ? { state: 'completed', completed_at: p.completed_at, counts: p.counts } : { state: 'pending' },
        ];
      }),
    );
    const done = ERASURE_SERVICES.every((s) => parts.some((p) => p.service === s));
    return { ...e, state: done ? 'completed' : 'in_progress', services };
  }

  private async recordPart(e: EraseCompleted): Promise<void> {
    const r = await rows(
      this.ds,
      `INSERT INTO ${S}.erasure_parts (request_id, service, counts, completed_at)
       SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM ${S}.erasures WHERE request_id = $1)
       ON CONFLICT DO NOTHING RETURNING service`,
      [e.request_id, e.service, JSON.stringify(e.counts), e.at],
    );
    if (r.length === 0 && !(await this.known(e.request_id))) {
      throw new PermanentError(`erase_completed for unknown erasure ${e.request_id}`);
    }
  }

  private async known(id: string): Promise<boolean> {
    return (await rows(this.ds, `SELECT 1 FROM ${S}.erasures WHERE request_id = $1`, [id])).length > 0;
  }

  /** Deletes this service's data for the user (or every user) of the business's numbers. */
  private async eraseOwn(em: EntityManager, wabaId: string, pnids: string[], waId?: string) {
    const user = waId ? ' AND wa_id = $2' : '';
    const p = waId ? [pnids, waId] : [pnids];
    const counts: Record<string, number> = {};
    for (const t of [
      'webhook_events',
      'outbound_messages',
      'user_windows',
      'blocked_users',
      'pair_buckets',
      'abuse_reports',
    ]) {
      const r = await rows(
        em,
        `DELETE FROM ${S}.${t} WHERE phone_number_id = ANY($1::text[])${user} RETURNING 1`,
        p,
      );
      counts[t] = r.length;
    }
    const tier = await rows(
      em,
      `DELETE FROM ${S}.tier_contacts WHERE waba_id = $1${waId ? ' AND wa_id = $2' : ''} RETURNING 1`,
      waId ? [wabaId, waId] : [wabaId],
    );
    counts.tier_contacts = tier.length;
    if (!waId) {
      const a = await rows(em, `DELETE FROM ${S}.webhook_attempts WHERE waba_id = $1 RETURNING 1`, [wabaId]);
      counts.webhook_attempts = a.length;
    }
    return counts;
  }
}
