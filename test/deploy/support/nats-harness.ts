import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { freePort } from '@relay/testing';
import { ROOT, find, renderOverlay } from './render';

export const NATS_SERVER = process.env.NATS_SERVER_BIN ?? 'nats-server';
export const USERS = ['gateway', 'business-forwarding', 'crypto', 'storage', 'admin'] as const;

export interface Callers {
  rpcRequesters: Record<string, string[]>;
  notify: Record<string, { publishers: string[]; subscribers: string[] }>;
  kvBuckets: Record<string, string[]>;
  directNatsUse: Record<string, string>;
}
export const callers = JSON.parse(
  readFileSync(join(ROOT, 'deploy/scripts/nats-callers.json'), 'utf8'),
) as Callers;

/** nats.conf and auth.conf exactly as the production overlay ships them in its ConfigMap. */
export function renderedNatsConfig(): { natsConf: string; authConf: string } {
  const objects = renderOverlay('production');
  const sts = find(objects, 'StatefulSet', 'nats');
  const volumes = (
    sts.spec as { template: { spec: { volumes: { name: string; configMap?: { name: string } }[] } } }
  ).template.spec.volumes;
  const cmName = volumes.find((v) => v.name === 'config')?.configMap?.name ?? '';
  const data = find(objects, 'ConfigMap', cmName).data ?? {};
  return { natsConf: data['nats.conf'], authConf: data['auth.conf'] };
}

/**
 * nats-server parses an environment variable's value as a config value, so a secret must not start
 * with a digit (it would be read as a number, or fail). deploy/scripts/create-secrets.sh and
 * deploy/compose/generate-env.sh generate "n" + hex; so does this.
 */
export const natsSecret = (bytes: number) => `n${randomBytes(bytes).toString('hex')}`;

/** The environment the NATS pod gets from its secrets, with generated values. */
export function secretEnv(): Record<string, string> {
  const env: Record<string, string> = { JS_KEY: natsSecret(32), SERVER_NAME: 'nats-0' };
  for (const u of USERS) env[`${u.toUpperCase().replace(/-/g, '_')}_NATS_PASSWORD`] = natsSecret(16);
  return env;
}

/** `nats-server -t`: the real server's verdict on a configuration. */
export function checkConfig(
  dir: string,
  file: string,
  env: Record<string, string>,
): { ok: boolean; out: string } {
  const r = spawnSync(NATS_SERVER, ['-t', '-c', join(dir, file)], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

export interface RunningNats {
  dir: string;
  port: number;
  env: Record<string, string>;
  /** Permission violations the server logged (it logs every denied publish and subscription). */
  violations: string[];
  connectAs(user: (typeof USERS)[number]): Promise<NatsConnection>;
  stop(): Promise<void>;
}

/**
 * Starts a real nats-server on a free loopback port with the shipped nats.conf (cluster block and pod
 * paths swapped for a single local server) and the shipped auth.conf, store encryption on.
 */
export async function startNats(): Promise<RunningNats> {
  const { natsConf, authConf } = renderedNatsConfig();
  const dir = mkdtempSync(join(tmpdir(), 'relay-nats-'));
  const port = await freePort();
  const local = natsConf
    .replace(/\ncluster\s*\{[\s\S]*?\n\}\n/, '\n')
    .replace(/^port: \d+$/m, `listen: "127.0.0.1:${port}"`)
    .replace(/^http_port: \d+$/m, '')
    .replace(/store_dir: "\/data"/, `store_dir: "${join(dir, 'js')}"`)
    .replace(/pid_file: "[^"]*"/, `pid_file: "${join(dir, 'nats.pid')}"`);
  if (local.includes('cluster {') || !local.includes(`127.0.0.1:${port}`))
    throw new Error('nats.conf changed shape');
  writeFileSync(join(dir, 'nats.conf'), local);
  writeFileSync(join(dir, 'auth.conf'), authConf);
  const env = secretEnv();
  const proc: ChildProcess = spawn(NATS_SERVER, ['-c', join(dir, 'nats.conf')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const violations: string[] = [];
  proc.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
    violations.push(
      ...d
        .toString()
        .split('\n')
        .filter((l) => /Violation/.test(l)),
    );
  });
  const connectAs = (user: (typeof USERS)[number]) =>
    connect({
      servers: `nats://127.0.0.1:${port}`,
      user,
      pass: env[`${user.toUpperCase().replace(/-/g, '_')}_NATS_PASSWORD`],
      name: `deploy-test-${user}`,
      maxReconnectAttempts: 0,
    });
  for (let i = 0; ; i++) {
    try {
      await (await connectAs('admin')).close();
      break;
    } catch (err) {
      if (i > 50 || proc.exitCode !== null)
        throw new Error(`nats-server did not start: ${(err as Error).message}\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    dir,
    port,
    env,
    violations,
    connectAs,
    stop: async () => {
      const exited = new Promise((r) => proc.once('exit', r));
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const isPermissionError = (err: unknown) => (err as { code?: string }).code === 'PERMISSIONS_VIOLATION';

/** Publishes as a request: the server answers a denied publish with a permissions error at once. */
export async function canPublish(nc: NatsConnection, subject: string): Promise<boolean> {
  try {
    await nc.request(subject, new TextEncoder().encode('{"probe":true}'), { timeout: 1000 });
    return true;
  } catch (err) {
    return !isPermissionError(err);
  }
}

/** A denied subscription is closed by the server's error before the flush returns. */
export async function canSubscribe(nc: NatsConnection, subject: string, queue?: string): Promise<boolean> {
  const sub = nc.subscribe(subject, { queue });
  const done = (async () => {
    try {
      for await (const _ of sub) void _;
    } catch {
      // closed by the server's permissions error
    }
  })();
  await nc.flush();
  await new Promise((r) => setTimeout(r, 20));
  const closed = sub.isClosed();
  if (!closed) sub.unsubscribe();
  await done;
  return !closed;
}

export { isPermissionError };
