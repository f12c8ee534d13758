import { z } from 'zod';

/** A configuration that does not validate; the message names every bad variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** Settings every service takes; each app extends this with its own. */
export const BaseConfigSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('production'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HTTP_HOST: z.string().default('0.0.0.0'),
  HTTP_PORT: z.coerce.number().int().min(0).max(65535),
  /** Idle keep-alive connections stay open this long: keep it above any load balancer's idle timeout. */
  HTTP_KEEPALIVE_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(65_000),
  NATS_URL: z
    .string()
    .regex(/^(nats|tls):\/\/[^\s]+$/, 'must be nats://host:port (comma-separated for a cluster)'),
  NATS_USER: z.string().optional(),
  NATS_PASSWORD: z.string().optional(),
  NATS_SUBJECT_ROOT: z
    .string()
    .regex(/^[a-z][a-z0-9_-]{0,31}$/, 'lower-case letters, digits, - and _, starting with a letter')
    .default('relay'),
  /** JetStream replicas of each relay stream: 3 on a 3-node NATS cluster, so losing a node loses nothing. */
  NATS_STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\/[^\s]+$/, 'must be a postgres:// URL'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  RETENTION_DAYS: z.coerce.number().int().min(1).max(30).default(30),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(15_000),
  DEMO_MODE: bool.default(false),
});
export type BaseConfig = z.infer<typeof BaseConfigSchema>;

/** Parses the environment; on failure throws ConfigError naming each variable (never its value). */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const r = schema.safeParse(env);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    const key = i.path.join('.') || '(root)';
    const present = typeof i.path[0] === 'string' && env[i.path[0]] !== undefined;
    return `${key}: ${present ? i.message : 'is required but not set'}`;
  });
  throw new ConfigError(problems);
}

export { bool as envBoolean };
