import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from './render';

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | number | boolean | null>;
  env_file?: unknown;
  ports?: string[];
  expose?: string[];
  healthcheck?: { test: string[] | string };
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  user?: string;
  read_only?: boolean;
  cap_drop?: string[];
}
export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** docker-compose.yml as Compose reads it (YAML merge keys resolved). */
export function loadCompose(): ComposeFile {
  return parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as ComposeFile;
}

const INTERPOLATION = /\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}/g;

/** Whether a value is taken (entirely or in part) from the environment rather than written here. */
export const isInterpolated = (v: string) => /\$\{[A-Z0-9_]+/.test(v);

/** `${VAR:-default}` -> default; `${VAR}` / `${VAR:?msg}` -> fill(VAR) (the deployment's value). */
export function interpolate(v: string, fill: (variable: string) => string): string {
  return v.replace(INTERPOLATION, (_m, name: string, op?: string, arg?: string) =>
    op && op.endsWith('-') ? (arg ?? '') : fill(name),
  );
}

/** The default of a whole-value `${VAR:-default}`, e.g. the image name. */
export function defaultOf(v: string): string {
  return interpolate(v, (name) => {
    throw new Error(`${name} has no default`);
  });
}

/** The relay services of the file: those running an app's built entry point. */
export function appServices(file: ComposeFile): Record<string, ComposeService> {
  return Object.fromEntries(
    Object.entries(file.services).filter(([, s]) => /^dist\/apps\//.test(s.command?.[1] ?? '')),
  );
}

export const envEntries = (s: ComposeService) =>
  Object.entries(s.environment ?? {}).map(([name, v]) => ({ name, value: v === null ? '' : String(v) }));
