import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ROOT } from './render';

/**
 * Each service's config schema, read from its source at test time. Only the deployment tests reach into
 * an app, and only its config module: the manifests must agree with exactly what the service validates.
 */
function configSchema(app: string, exportName: string): z.ZodObject {
  const mod = require(join(ROOT, 'apps', app, 'src', 'config')) as Record<string, unknown>;
  const schema = mod[exportName];
  if (!(schema instanceof z.ZodObject))
    throw new Error(`apps/${app}/src/config does not export ${exportName}`);
  return schema;
}
const BusinessForwardingConfigSchema = configSchema('business-forwarding', 'BusinessForwardingConfigSchema');
const CryptoConfigSchema = configSchema('crypto', 'CryptoConfigSchema');
const GatewayConfigSchema = configSchema('gateway', 'GatewayConfigSchema');
const StorageConfigSchema = configSchema('storage', 'StorageConfigSchema');

/** The four services, their config schemas (read at test time, so new variables are seen) and ports. */
export const SERVICES = {
  gateway: { schema: GatewayConfigSchema as z.ZodType, port: 8080, public: true },
  'business-forwarding': { schema: BusinessForwardingConfigSchema as z.ZodType, port: 8081, public: true },
  crypto: { schema: CryptoConfigSchema as z.ZodType, port: 8082, public: false },
  storage: { schema: StorageConfigSchema as z.ZodType, port: 8083, public: false },
} as const;
export type ServiceName = keyof typeof SERVICES;
export const SERVICE_NAMES = Object.keys(SERVICES) as ServiceName[];

/** Variables whose values are secrets: never inline, always from a secret or the environment. */
export const SECRET_NAME = /KEY|SECRET|PASSWORD|TOKEN|DATABASE_URL/;

/** The service apps of apps/ (Nx tag type:app; tools such as a CLI carry other tags). */
export const serviceAppDirs = () =>
  readdirSync(join(ROOT, 'apps')).filter((d) => {
    const project = join(ROOT, 'apps', d, 'project.json');
    if (!existsSync(project)) return false;
    const { tags = [] } = JSON.parse(readFileSync(project, 'utf8')) as { tags?: string[] };
    return tags.includes('type:app') && existsSync(join(ROOT, 'apps', d, 'src/main.ts'));
  });

/** The object schema under refinements and pipes (refine/transform keep the shape inside). */
function objectOf(schema: z.ZodType): z.ZodObject {
  if (schema instanceof z.ZodObject) return schema;
  if (schema instanceof z.ZodPipe) return objectOf(schema.in as z.ZodType);
  throw new Error('config schema is neither an object nor a pipe of one');
}

export function shapeOf(service: ServiceName): Record<string, z.ZodType> {
  return objectOf(SERVICES[service].schema).shape as Record<string, z.ZodType>;
}

/** Variables the service cannot start without: no default and not optional. */
export function requiredNames(service: ServiceName): string[] {
  return Object.entries(shapeOf(service))
    .filter(([, field]) => !field.safeParse(undefined).success)
    .map(([name]) => name);
}

const b64 = () => randomBytes(32).toString('base64');
/** Shapes a secret may take; generated per run, never committed. */
const CANDIDATES = [
  () => `k1:${b64()}`,
  b64,
  () => randomBytes(32).toString('hex'),
  () => `postgres://svc:${randomBytes(8).toString('hex')}@db:5432/relay`,
  () => `DE=postgres://storage:${randomBytes(8).toString('hex')}@relay-db-de-rw:5432/relay`,
  () => 'https://hook.example.invalid/send',
];

/** A generated value the schema accepts for a variable the deployment supplies (secrets, required URLs). */
export function placeholderFor(service: ServiceName, name: string): string {
  const field = shapeOf(service)[name];
  for (const make of CANDIDATES) {
    const v = make();
    if (field?.safeParse(v).success) return v;
  }
  throw new Error(`${service}: no placeholder shape fits ${name}; add one to CANDIDATES`);
}

/** Parses an environment with the service's real schema; returns the problems (names only). */
export function configProblems(service: ServiceName, env: Record<string, string>): string[] {
  const r = SERVICES[service].schema.safeParse(env);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}
