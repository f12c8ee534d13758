import { z } from 'zod';
import { BaseConfigSchema } from '@relay/platform';

/** A token bucket as "<bucket size>:<milliseconds per permit>", e.g. "60:1000" = burst 60, 1/s refill. */
const RateLimitSpec = z
  .string()
  .regex(/^\d{1,7}:\d{1,9}$/, 'must be "<bucket size>:<ms per permit>", e.g. 60:1000')
  .transform((v) => {
    const [size, ms] = v.split(':').map(Number);
    return { size, permitMs: ms };
  })
  .refine((v) => v.size >= 1 && v.permitMs >= 1, 'bucket size and ms per permit must be >= 1');
export type RateLimitSpec = z.infer<typeof RateLimitSpec>;

export const GatewayConfigSchema = BaseConfigSchema.extend({
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** How verification codes reach the user: "log" (development only) or "http" (POST to a hook). */
  VERIFICATION_SENDER: z.enum(['log', 'http']).default('log'),
  VERIFICATION_HOOK_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Sent as "Authorization: Bearer <token>" to the hook, so it can reject strangers. */
  VERIFICATION_HOOK_TOKEN: z.string().min(16).optional(),
  VERIFICATION_TTL_MS: z.coerce.number().int().min(10_000).max(3_600_000).default(600_000),
  WS_MAX_FRAME_BYTES: z.coerce
    .number()
    .int()
    .min(4096)
    .max(4 * 1024 * 1024)
    .default(128 * 1024),
  /** Bytes the gateway may buffer for one slow connection before closing it (4008). */
  WS_MAX_BUFFERED_BYTES: z.coerce
    .number()
    .int()
    .min(64 * 1024)
    .max(256 * 1024 * 1024)
    .default(4 * 1024 * 1024),
  /** Messages pushed to one device and not yet acknowledged, at most. */
  WS_DELIVERY_WINDOW: z.coerce.number().int().min(1).max(500).default(100),
  WS_HEARTBEAT_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
  /** Frames per connection (local, any type): the first line against floods of garbage. */
  RATE_LIMIT_CONNECTION_FRAMES: RateLimitSpec.default({ size: 200, permitMs: 5 }),
  /** Shared by all replicas (NATS KV): HTTP requests and WebSocket upgrades per client IP. */
  RATE_LIMIT_IP: RateLimitSpec.default({ size: 300, permitMs: 50 }),
  RATE_LIMIT_DEVICE_SEND: RateLimitSpec.default({ size: 60, permitMs: 1000 }),
  RATE_LIMIT_DEVICE_BUSINESS_SEND: RateLimitSpec.default({ size: 30, permitMs: 2000 }),
  RATE_LIMIT_DEVICE_BUNDLE: RateLimitSpec.default({ size: 20, permitMs: 30_000 }),
  RATE_LIMIT_VERIFICATION: RateLimitSpec.default({ size: 5, permitMs: 120_000 }),
  /**
   * Share of a shared bucket (ip, device_send, device_business_send) one replica may take ahead in a
   * single NATS round trip and spend locally; also the most a key may go over its limit in any window.
   * 0: a round trip per request.
   */
  RATE_LIMIT_LEASE_FRACTION: z.coerce.number().min(0).max(0.5).default(0.1),
  /** Use the first X-Forwarded-For address as the client IP (only behind a trusted proxy). */
  TRUST_PROXY: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
})
  .refine((c) => c.VERIFICATION_SENDER !== 'http' || c.VERIFICATION_HOOK_URL !== undefined, {
    path: ['VERIFICATION_HOOK_URL'],
    message: 'is required when VERIFICATION_SENDER=http',
  })
  .refine((c) => c.VERIFICATION_SENDER !== 'log' || c.NODE_ENV !== 'production' || c.DEMO_MODE, {
    path: ['VERIFICATION_SENDER'],
    message: 'log writes codes to the log: only for NODE_ENV=development/test or DEMO_MODE=true',
  });
export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
