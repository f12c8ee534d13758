import { z } from 'zod';
import { BaseConfigSchema } from '@relay/platform';

const PG_URL = /^postgres(ql)?:\/\/[^\s,]+$/;

/**
 * "DE=postgres://...,IN=postgres://..." -> Map. A region code appears once, each URL must be a postgres URL.
 * The values are secrets (they carry passwords): errors name the region, never the URL.
 */
export function parseRegionUrls(spec: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = entry.indexOf('=');
    const region = eq > 0 ? entry.slice(0, eq) : '';
    const url = entry.slice(eq + 1);
    if (!/^[A-Z]{2}$/.test(region))
      throw new Error('entries must look like <2-letter region>=postgres://...');
    if (!PG_URL.test(url)) throw new Error(`region ${region}: not a postgres:// URL`);
    if (out.has(region)) throw new Error(`region ${region} appears twice`);
    out.set(region, url);
  }
  return out;
}

const RegionUrls = z
  .string()
  .default('')
  .transform((s, ctx) => {
    try {
      return parseRegionUrls(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

const MasterKey = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/=]{43,44}$/, 'must be <id>:<base64 of 32 bytes>');

export const StorageConfigSchema = BaseConfigSchema.extend({
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8083),
  /** Current master key wrapping the per-business data keys ("id:base64"). */
  MASTER_KEY: MasterKey,
  /** Older master keys still accepted for unwrapping during a rotation (comma-separated). */
  MASTER_KEY_PREVIOUS: z.string().default(''),
  /** Local Storage: region code -> database URL. Numbers without a region use DATABASE_URL. */
  STORAGE_REGION_DATABASE_URLS: RegionUrls,
  /** User identifiers are deleted this long after the last status update of their messages. */
  USER_IDENTIFIER_RETENTION_DAYS: z.coerce.number().int().min(1).max(30).default(30),
  PURGE_INTERVAL_MS: z.coerce.number().int().min(1000).max(86_400_000).default(300_000),
  PURGE_BATCH_SIZE: z.coerce.number().int().min(1).max(50_000).default(2000),
  /** Messages each consumer handles at once; they are written in batches of up to WRITE_BATCH_SIZE. */
  CONSUMER_CONCURRENCY: z.coerce.number().int().min(1).max(4096).default(512),
  /** A message handed to a replica that died is redelivered after this long. */
  CONSUMER_ACK_WAIT_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
  WRITE_BATCH_SIZE: z.coerce.number().int().min(1).max(5000).default(256),
  /** A registration that conflicts with the current region is retried this long (a deregistration may be in flight). */
  REGION_CHANGE_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(30_000),
  /**
   * How long write batches reuse a number's route (region, retention) instead of reading it again. Every
   * change of a number drops its route at once (Postgres NOTIFY); this bounds a missed one. 0: no cache.
   */
  NUMBER_ROUTE_CACHE_MS: z.coerce.number().int().min(0).max(600_000).default(5000),
});
export type StorageConfig = z.infer<typeof StorageConfigSchema>;
