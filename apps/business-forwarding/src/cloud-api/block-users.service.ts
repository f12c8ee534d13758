import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { CLOCK, type Clock } from '@relay/platform';
import { CloudApiError } from '../common/errors';
import { normalizePhone } from '../common/ids';
import { rows } from '../common/sql';
import type { Tenant } from '../tenancy/auth.service';

const S = 'business_forwarding';
const MAX_BLOCKED = 64_000;
const MAX_PER_REQUEST = 1000;
const DAY_MS = 24 * 3600_000;

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

interface Outcome {
  input: string;
  wa_id?: string;
  error?: string;
}

/** Cloud API's block_users: block only users who wrote in the last 24 h, 64k cap, partial failures (139100). */
@Injectable()
export class BlockUsersService {
  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async block({ number }: Tenant, body: unknown) {
    const users = this.parse(body);
    const pnid = number.phone_number_id;
    const now = this.clock.now();
    const [{ n }] = await rows<{ n: number }>(
      this.ds,
      `SELECT count(*)::int AS n FROM ${S}.blocked_users WHERE phone_number_id = $1`,
      [pnid],
    );
    if (n + users.length > MAX_BLOCKED)
      throw new CloudApiError(139101, `Blocklist limit reached: at most ${MAX_BLOCKED} users.`);
    const outcomes: Outcome[] = [];
    for (const input of users) {
      const waId = normalizePhone(input);
      if (!waId) {
        outcomes.push({ input, error: 'Invalid phone number.' });
        continue;
      }
      const r = await rows(
        this.ds,
        `INSERT INTO ${S}.blocked_users (phone_number_id, wa_id, created_at)
         SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM ${S}.user_windows WHERE phone_number_id = $1 AND wa_id = $2 AND last_inbound_at > $4)
         ON CONFLICT DO NOTHING RETURNING wa_id`,
        [pnid, waId, now, new Date(now.getTime() - DAY_MS)],
      );
      const already = r.length === 0 && (await this.isBlocked(pnid, waId));
      outcomes.push(
        r.length || already
          ? { input, wa_id: waId }
          : {
              input,
              wa_id: waId,
              error: 'Only users who messaged this number in the last 24 hours can be blocked.',
            },
      );
    }
    return this.answer('added_users', outcomes, 'Failed to block some users.');
  }

  async unblock({ number }: Tenant, body: unknown) {
    const users = this.parse(body);
    const outcomes: Outcome[] = [];
    for (const input of users) {
      const waId = normalizePhone(input);
      if (!waId) {
        outcomes.push({ input, error: 'Invalid phone number.' });
        continue;
      }
      await this.ds.query(`DELETE FROM ${S}.blocked_users WHERE phone_number_id = $1 AND wa_id = $2`, [
        number.phone_number_id,
        waId,
      ]);
      outcomes.push({ input, wa_id: waId });
    }
    return this.answer('removed_users', outcomes, 'Failed to unblock some users.');
  }

  /** GET with Graph cursors: `after`/`before` are opaque (base64url of a wa_id). */
  async list({ number }: Tenant, query: Record<string, unknown>) {
    const limit = Math.min(Math.max(Number(query.limit ?? 100) || 100, 1), 1000);
    const after = this.cursor(query.after);
    const before = this.cursor(query.before);
    const data = await rows<{ wa_id: string }>(
      this.ds,
      before !== undefined
        ? `SELECT * FROM (SELECT wa_id FROM ${S}.blocked_users WHERE phone_number_id = $1 AND wa_id < $2 ORDER BY wa_id DESC LIMIT $3) x ORDER BY wa_id`
        : `SELECT wa_id FROM ${S}.blocked_users WHERE phone_number_id = $1 AND ($2::text IS NULL OR wa_id > $2) ORDER BY wa_id LIMIT $3`,
      [number.phone_number_id, before ?? after ?? null, limit],
    );
    const enc = (w: string) => Buffer.from(w).toString('base64url');
    return {
      data: data.map((d) => ({ messaging_product: 'whatsapp', wa_id: d.wa_id })),
      paging: data.length
        ? { cursors: { before: enc(data[0].wa_id), after: enc(data[data.length - 1].wa_id) } }
        : { cursors: {} },
    };
  }

  private async isBlocked(pnid: string, waId: string): Promise<boolean> {
    const r = await rows(
      this.ds,
      `SELECT 1 FROM ${S}.blocked_users WHERE phone_number_id = $1 AND wa_id = $2`,
      [pnid, waId],
    );
    return r.length > 0;
  }

  private cursor(v: unknown): string | undefined {
    if (v === undefined) return undefined;
    const s = typeof v === 'string' ? Buffer.from(v, 'base64url').toString('utf8') : '';
    if (!/^\d{1,15}$/.test(s)) throw new CloudApiError(100, 'Invalid paging cursor.');
    return s;
  }

  private parse(body: unknown): string[] {
    if (!isObj(body)) throw new CloudApiError(100, 'The request body must be a JSON object.');
    if (body.messaging_product === undefined)
      throw new CloudApiError(131008, 'The parameter messaging_product is required.');
    if (body.messaging_product !== 'whatsapp')
      throw new CloudApiError(131009, "messaging_product must be 'whatsapp'.");
    if (body.block_users === undefined)
      throw new CloudApiError(131008, 'The parameter block_users is required.');
    const list = body.block_users;
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_PER_REQUEST) {
      throw new CloudApiError(100, `Param block_users must be an array of 1 to ${MAX_PER_REQUEST} entries.`);
    }
    return list.map((u) => {
      if (!isObj(u) || typeof u.user !== 'string')
        throw new CloudApiError(100, 'Each block_users entry needs a string user.');
      return u.user;
    });
  }

  private answer(field: 'added_users' | 'removed_users', outcomes: Outcome[], summary: string) {
    const ok = outcomes.filter((o) => !o.error).map((o) => ({ input: o.input, wa_id: o.wa_id }));
    const failed = outcomes.filter((o) => o.error);
    const result = { messaging_product: 'whatsapp', block_users: { [field]: ok } };
    if (failed.length === 0) return result;
    throw new CloudApiError(139100, summary, {
      messaging_product: 'whatsapp',
      block_users: {
        [field]: ok,
        failed_users: failed.map((f) => ({
          input: f.input,
          ...(f.wa_id ? { wa_id: f.wa_id } : {}),
          errors: [{ message: f.error, code: 139100, error_data: { details: f.error } }],
        })),
      },
    });
  }
}
