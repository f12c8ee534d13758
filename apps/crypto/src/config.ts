import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { BaseConfigSchema } from '@relay/platform';

/** "<id>:<base64 of 32 bytes>"; the value is never echoed in errors or logs. */
const MasterKey = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=$/, 'must be <id>:<base64 of exactly 32 bytes>');
const MasterKeyList = z
  .string()
  .regex(
    /^([A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=)(,[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=)*$/,
    'must be comma-separated <id>:<base64 of exactly 32 bytes> entries',
  );
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const CryptoConfigSchema = BaseConfigSchema.extend({
  HTTP_PORT: int(0, 65535).default(8082),
  /** Current master key wrapping the per-number data keys. */
  MASTER_KEY: MasterKey,
  /** Older master keys still accepted for unwrapping while a rotation rewraps the data keys. */
  MASTER_KEY_PREVIOUS: MasterKeyList.optional(),
  /** libsignal worker threads (default: one per core). */
  CRYPTO_WORKERS: int(1, 64).default(availableParallelism()),
  /** Envelopes/requests handled at once per process, and the largest batch per transaction. */
  CRYPTO_CONCURRENCY: int(1, 4096).default(512),
  CRYPTO_BATCH_SIZE: int(1, 1000).default(128),
  /** Batches (transactions) in flight per pipeline (inbound, outbound): overlaps DB waits with libsignal work. */
  CRYPTO_BATCHES_IN_FLIGHT: int(1, 64).default(4),
  /**
   * How long an unacknowledged envelope/request waits before JetStream redelivers it after a crash. A
   * live process signals "in progress" every third of it while a message is being handled.
   */
  CRYPTO_ACK_WAIT_MS: int(1000, 600_000).default(10_000),
  /** One-time EC and Kyber prekeys per number: generated up to POOL_SIZE when fewer than THRESHOLD remain. */
  PREKEY_POOL_SIZE: int(1, 10_000).default(100),
  PREKEY_REFILL_THRESHOLD: int(0, 10_000).default(25),
  /** Signed EC prekey and last-resort Kyber key rotation, and how long the previous ones stay usable. */
  SIGNED_PREKEY_ROTATION_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 90)
    .default(48),
  SIGNED_PREKEY_GRACE_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 90)
    .default(24 * 14),
  /** How often the maintenance loop checks rotation, refill and cleanup. */
  KEY_MAINTENANCE_INTERVAL_MS: int(100, 24 * 3600_000).default(60_000),
  /** Outbox rows (already-emitted events, sealed) kept for deduplicating late redeliveries. */
  OUTBOX_RETENTION_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(24),
  GATEWAY_RPC_TIMEOUT_MS: int(100, 60_000).default(5000),
  /**
   * How long a recipient's device list, once checked with gateway, is trusted before the next business
   * message checks it again (a device linked or removed in between is noticed by then).
   */
  DEVICE_LIST_TTL_MS: int(0, 24 * 3600_000).default(60_000),
}).refine((c) => c.DATABASE_POOL_SIZE > 2 * c.CRYPTO_BATCHES_IN_FLIGHT, {
  // Inbound and outbound each keep that many transactions open; other work needs connections too.
  message: 'DATABASE_POOL_SIZE must be greater than 2 x CRYPTO_BATCHES_IN_FLIGHT',
  path: ['DATABASE_POOL_SIZE'],
});
export type CryptoConfig = z.infer<typeof CryptoConfigSchema>;
