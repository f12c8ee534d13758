// The four services, built, started with the production overlay's environment (ConfigMaps as rendered,
// secrets generated in the shapes their schemas ask for) against a real nats-server running the shipped
// NATS configuration (per-service users, store encryption) and a migrated Postgres database: each
// becomes ready under its own least-privilege user, nats-server logs no permission violation, and each
// stops cleanly on SIGTERM. Only what cannot be the cluster's is swapped: NATS and database addresses,
// HTTP ports, and NATS_STREAM_REPLICAS=1 (one server here, three in the cluster).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { createTestDatabase, freePort, waitFor, type TestDatabase } from '@relay/testing';
import { startNats, type RunningNats } from './support/nats-harness';
import { ROOT, renderOverlay } from './support/render';
import { SERVICE_NAMES, placeholderFor, type ServiceName } from './support/services';
import { deployment, resolveEnv } from './support/workloads';

let nats: RunningNats;
let db: TestDatabase;
const procs = new Map<ServiceName, { proc: ChildProcess; port: number; out: string[] }>();

beforeAll(async () => {
  nats = await startNats();
  db = await createTestDatabase('deploy_services');
  await promisify(execFile)(process.execPath, ['tools/migrate.mjs'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url },
  });
  const objects = renderOverlay('production');
  for (const svc of SERVICE_NAMES) {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
    for (const e of resolveEnv(objects, deployment(objects, svc).pod.containers[0])) {
      if (e.source === 'secret' && e.optional) continue;
      env[e.name] = e.source === 'secret' ? placeholderFor(svc, e.name) : (e.value ?? '');
    }
    const port = await freePort();
    Object.assign(env, {
      HTTP_PORT: String(port),
      NATS_URL: `nats://127.0.0.1:${nats.port}`,
      NATS_PASSWORD: nats.env[`${svc.toUpperCase().replace(/-/g, '_')}_NATS_PASSWORD`],
      NATS_STREAM_REPLICAS: '1',
      DATABASE_URL: db.url,
    });
    const proc = spawn(process.execPath, [`dist/apps/${svc}/src/main.js`], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: string[] = [];
    const keep = (d: Buffer) => out.push(...d.toString().split('\n').filter(Boolean).slice(-50));
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    procs.set(svc, { proc, port, out });
  }
}, 60_000);

afterAll(async () => {
  for (const { proc } of procs.values()) {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    }
  }
  await db?.drop();
  await nats?.stop();
});

const ready = async (port: number) => {
  const r = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined);
  return r?.status === 200;
};

it.each(SERVICE_NAMES)(
  '%s becomes ready under its own NATS user',
  async (svc) => {
    const { proc, port, out } = procs.get(svc) as { proc: ChildProcess; port: number; out: string[] };
    const up = await waitFor(async () => proc.exitCode !== null || (await ready(port)), 45_000).catch(
      () => false,
    );
    expect([svc, proc.exitCode === null && up, out.slice(-15).join('\n')]).toEqual([
      svc,
      true,
      expect.any(String),
    ]);
  },
  60_000,
);

it('saw no NATS permission violation while the services started and ran', async () => {
  // Let consumers pull and the rate limiter and maintenance loops run once more.
  await new Promise((r) => setTimeout(r, 1500));
  expect(nats.violations).toEqual([]);
  for (const svc of SERVICE_NAMES) {
    expect([
      svc,
      (procs.get(svc)?.out ?? []).filter((l) => /PERMISSIONS_VIOLATION|Permissions Violation/.test(l)),
    ]).toEqual([svc, []]);
  }
});

it.each(SERVICE_NAMES)(
  '%s stops cleanly on SIGTERM',
  async (svc) => {
    const { proc } = procs.get(svc) as { proc: ChildProcess };
    expect([svc, proc.exitCode]).toEqual([svc, null]);
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
  },
  30_000,
);
