import { z } from 'zod';
import { BaseConfigSchema, envBoolean } from '@relay/platform';

const DAY_MS = 24 * 60 * 60 * 1000;
const ms = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

export const BusinessForwardingConfigSchema = BaseConfigSchema.extend({
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  /** Bearer credential of the operator (admin) API. Never in code or committed config. */
  OPERATOR_TOKEN: z.string().min(24, 'must be at least 24 characters'),
  /** "<id>:<base64 of 32 bytes>" (as crypto and storage take it): wraps each business's data key. */
  MASTER_KEY: z
    .string()
    .regex(/^(?:[A-Za-z0-9_-]{1,32}:)?[A-Za-z0-9+/]{43}=$/, 'must be <id>:<base64 of exactly 32 bytes>'),
  /** Meta requires HTTPS callbacks; plain http only for local development and tests. */
  WEBHOOK_ALLOW_HTTP: envBoolean.default(false),
  WEBHOOK_RETRY_WINDOW_MS: ms(7 * DAY_MS, 1000),
  WEBHOOK_BACKOFF_BASE_MS: ms(1000, 1),
  WEBHOOK_BACKOFF_MAX_MS: ms(60 * 60 * 1000, 1),
  WEBHOOK_TIMEOUT_MS: ms(10_000, 100),
  WEBHOOK_MAX_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(16),
  /**
   * Default for a subscription's max_events_per_post: webhook events of one endpoint joined into one
   * POST when they wait together (Meta documents up to 1000 updates per POST). 1 = one event per POST.
   */
  WEBHOOK_MAX_EVENTS_PER_POST: z.coerce.number().int().min(1).max(1000).default(100),
  /** Deliveries (POSTs) in flight per process across all endpoints. */
  WEBHOOK_WORKERS: z.coerce.number().int().min(1).max(5000).default(256),
  WEBHOOK_POLL_MS: ms(500, 10),
  WEBHOOK_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(3 * 1024 * 1024),
  DEFAULT_THROUGHPUT_MPS: z.coerce.number().int().min(1).max(100_000).default(80),
  /** Pair rate limit: a burst of this many messages to one user, refilled one per PAIR_REFILL_MS. */
  DEFAULT_PAIR_BURST: z.coerce.number().int().min(1).max(10_000).default(45),
  DEFAULT_PAIR_REFILL_MS: ms(6000, 1),
  /** Unique users per rolling 24 h per business (0 = unlimited), before quality adjustments. */
  DEFAULT_MESSAGING_LIMIT: z.coerce.number().int().min(0).default(0),
  /** Spam reports + blocks (minus unblocks) over 7 days that make a number YELLOW, RED, or blocked. */
  QUALITY_YELLOW_REPORTS: z.coerce.number().int().min(1).default(5),
  QUALITY_RED_REPORTS: z.coerce.number().int().min(1).default(20),
  QUALITY_BLOCK_REPORTS: z.coerce.number().int().min(1).default(50),
  /** How long a verified access token stays cached in one process (revocation delay). */
  AUTH_CACHE_MS: ms(5000),
});
export type BusinessForwardingConfig = z.infer<typeof BusinessForwardingConfigSchema>;
