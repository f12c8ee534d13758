// The runtime image, laid out as the Dockerfile's last stage copies it (no Docker engine runs here):
// the migration Job's command, with the environment names the Kubernetes Job gives it, migrates every
// service's schema and a Local Storage region database, twice without harm (once per release, safely
// re-runnable); each service's entry point loads from that layout and refuses to start without its
// configuration, naming what is missing.
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from '@relay/testing';
import { ROOT, renderOverlay } from './support/render';
import { SERVICE_NAMES, requiredNames } from './support/services';
import { podTemplates, resolveEnv } from './support/workloads';

const run = promisify(execFile);
let app: string;
let main: TestDatabase;
let region: TestDatabase;

beforeAll(async () => {
  app = mkdtempSync(join(tmpdir(), 'relay-image-'));
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  for (const [, from, src, dst] of runtime.matchAll(/^COPY (?:--from=(\S+) )?(\S+) (\S+)$/gm)) {
    const source = from ? src.replace(/^\/app\//, '') : src;
    const target = join(app, dst);
    mkdirSync(join(target, '..'), { recursive: true });
    // The production node_modules stage cannot be rebuilt offline: link the installed one.
    if (source === 'node_modules') symlinkSync(join(ROOT, 'node_modules'), target.replace(/\/$/, ''));
    else cpSync(join(ROOT, source), dst.endsWith('/') ? join(target, source) : target, { recursive: true });
  }
  main = await createTestDatabase('image');
  region = await createTestDatabase('image_de');
});
afterAll(async () => {
  await main?.drop();
  await region?.drop();
  if (app) rmSync(app, { recursive: true, force: true });
});

const node = (args: string[], env: Record<string, string>) =>
  run(process.execPath, args, { cwd: app, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 });

it('migrates every service and every region with the Job command and environment, idempotently', async () => {
  const job = podTemplates(renderOverlay('production').filter((o) => o.kind === 'Job'))[0].pod.containers[0];
  const env: Record<string, string> = {};
  for (const e of resolveEnv(renderOverlay('production'), job)) {
    if (e.source !== 'secret') env[e.name] = e.value ?? '';
    else env[e.name] = e.name === 'STORAGE_REGION_DATABASE_URLS' ? `DE=${region.url}` : main.url;
  }
  const [cmd, ...args] = job.command ?? [];
  expect(cmd).toBe('node');
  const first = await node(args, env);
  for (const svc of SERVICE_NAMES) expect(first.stdout).toMatch(new RegExp(`^${svc}: applied `, 'm'));
  expect(first.stdout).toMatch(/^storage region DE: applied /m);
  const again = await node(args, env);
  for (const svc of SERVICE_NAMES) expect(again.stdout).toMatch(new RegExp(`^${svc}: up to date`, 'm'));

  const c = new Client({ connectionString: main.url });
  await c.connect();
  try {
    const { rows } = await c.query<{ schema_name: string }>(
      'SELECT schema_name FROM information_schema.schemata',
    );
    const schemas = rows.map((r) => r.schema_name);
    for (const s of ['gateway', 'business_forwarding', 'crypto', 'storage']) expect(schemas).toContain(s);
  } finally {
    await c.end();
  }
});

it.each(SERVICE_NAMES)(
  '%s: the entry point loads from the image layout and names missing settings',
  async (svc) => {
    const err = await node([`dist/apps/${svc}/src/main.js`], {}).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(1);
    for (const name of requiredNames(svc)) expect(err?.stderr).toContain(name);
    expect(err?.stderr).not.toMatch(/Cannot find module/);
  },
);
