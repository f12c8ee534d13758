import { z } from 'zod';
import { PhoneNumberId, WaId, WabaId } from '@relay/protocol';
import { AdminError } from '../common/errors';
import { REGIONS } from '../cloud-api/phone-number.service';

const Limit = z.number().int().min(0);

export const CreateBusiness = z
  .object({
    waba_id: WabaId,
    name: z.string().min(1).max(256),
    app_secret: z.string().min(16).max(256).optional(),
    messaging_limit: Limit.optional(),
    retention_days: z.number().int().min(1).max(30).optional(),
  })
  .strict();

export const PatchBusiness = z
  .object({
    name: z.string().min(1).max(256).optional(),
    status: z.enum(['active', 'restricted']).optional(),
    messaging_limit: Limit.nullable().optional(),
    retention_days: z.number().int().min(1).max(30).nullable().optional(),
  })
  .strict();

export const RotateSecret = z.object({ app_secret: z.string().min(16).max(256).optional() }).strict();

export const CreateNumber = z
  .object({
    phone_number_id: PhoneNumberId,
    display_phone_number: z.string().regex(/^\+?[\d\s\-()]{7,24}$/),
    verified_name: z.string().min(1).max(256).optional(),
    data_localization_region: z.enum(REGIONS as [string, ...string[]]).optional(),
  })
  .strict();

export const PatchNumber = z
  .object({
    verified_name: z.string().min(1).max(256).optional(),
    throughput_mps: z.number().int().min(1).max(100_000).nullable().optional(),
    pair_burst: z.number().int().min(1).max(10_000).nullable().optional(),
    pair_refill_ms: z.number().int().min(1).max(86_400_000).nullable().optional(),
    nats_delivery: z.boolean().optional(),
  })
  .strict();

export const IssueToken = z
  .object({
    label: z.string().max(128).optional(),
    expires_in_seconds: z
      .number()
      .int()
      .min(1)
      .max(10 * 365 * 86400)
      .optional(),
  })
  .strict();

export const PatchToken = z.object({ expires_at: z.iso.datetime({ offset: true }).nullable() }).strict();

export const SetWebhook = z
  .object({
    callback_url: z.url().max(2048),
    verify_token: z.string().min(1).max(256),
    max_concurrency: z.number().int().min(1).max(1000).optional(),
    max_events_per_post: z.number().int().min(1).max(1000).optional(),
    timeout_ms: z.number().int().min(100).max(60_000).optional(),
  })
  .strict();

export const Replay = z
  .object({
    ids: z
      .array(z.string().regex(/^\d{1,18}$/))
      .min(1)
      .max(10_000)
      .optional(),
  })
  .strict();

export const RequestErasure = z
  .object({ scope: z.enum(['user', 'business']), wa_id: WaId.optional() })
  .strict()
  .refine((r) => (r.scope === 'user') === (r.wa_id !== undefined), {
    message: 'wa_id is required for scope=user and forbidden for scope=business',
  });

/** Parses an operator request body, answering 400 with every problem named. */
export function parseAdmin<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body ?? {});
  if (r.success) return r.data;
  const msg = r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
  throw new AdminError(400, 'invalid_request', msg);
}
