// The README's run command (`npm start`): builds, provides NATS and Postgres (the configured ones, the
// local default ports, or ones it starts itself), applies migrations, then runs the four services as
// separate processes and prints where each listens. Ctrl-C (SIGINT) or SIGTERM stops everything cleanly.
//
// Environment (all optional):
//   NATS_URL, DATABASE_URL   use these servers; nothing is started
//   RELAY_PORT_BASE          gateway listens here, business-forwarding +1, crypto +2, storage +3 (8080)
//   RELAY_DATA_DIR           local state: embedded Postgres, NATS store, generated local secrets (.data)
//   RELAY_LOCAL_PG_PORT      port probed / used for a local Postgres (5432)
//   RELAY_LOCAL_NATS_PORT    port probed / used for a local NATS (4222)
//   RELAY_SERVICES           comma-separated subset of services to run (all four)
//   RELAY_CRYPTO_REPLICAS    crypto processes to run (1); replica n > 1 listens on RELAY_PORT_BASE+2+n
//   RELAY_SKIP_BUILD         true: use the existing dist/ (the test command has just built it)
//   DEMO_MODE                true: also run the demo business (tools/demo/demo-business.mjs, docs/demo.md)
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, chmodSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPortOpen, startLocalNats, ensureLocalPostgres, ensureDatabase } from './run/infra.mjs';
import { localSecrets } from './run/secrets.mjs';
import { SERVICES, serviceEnv } from './run/services.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = process.env;
const say = (msg) => process.stdout.write(`[relay] ${msg}\n`);

const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  say(`Node >= 24 is required (found ${process.version}); run through npm (npm start) after npm ci`);
  process.exit(1);
}

const dataDir = resolve(root, env.RELAY_DATA_DIR ?? '.data');
mkdirSync(dataDir, { recursive: true });
// The embedded Postgres runs as the unprivileged postgres user when we are root; it must reach its dir.
chmodSync(dataDir, 0o755);
const portBase = Number(env.RELAY_PORT_BASE ?? 8080);
const wanted = (env.RELAY_SERVICES ?? SERVICES.join(',')).split(',').map((s) => s.trim());
const cleanups = [];
const children = new Map();
let stopping = false;

async function main() {
  if (env.RELAY_SKIP_BUILD !== 'true') {
    say('building (incremental)');
    const build = spawnSync(process.execPath, [join(root, 'tools/build.mjs')], {
      stdio: 'inherit',
      cwd: root,
    });
    if (build.status !== 0) throw new Error('build failed');
  }

  // The demo business's webhook is a local plain-http endpoint.
  if (env.DEMO_MODE === 'true') env.WEBHOOK_ALLOW_HTTP ??= 'true';
  const natsUrl = await provideNats();
  const databaseUrl = await providePostgres();
  const secrets = localSecrets(dataDir, env);

  const { migrateAll } = await import('./migrate.mjs');
  await migrateAll({ ...env, DATABASE_URL: databaseUrl }, (line) => say(`migrate ${line}`));

  for (const [i, service] of SERVICES.entries()) {
    if (!wanted.includes(service)) continue;
    startService(service, serviceEnv(service, { env, natsUrl, databaseUrl, port: portBase + i, secrets }));
  }
  // Extra crypto replicas (same queue groups, own health port) after the four base ports.
  const cryptoReplicas = wanted.includes('crypto') ? Number(env.RELAY_CRYPTO_REPLICAS ?? 1) : 1;
  for (let n = 2; n <= cryptoReplicas; n++) {
    const port = portBase + SERVICES.length + n - 2;
    startService(`crypto#${n}`, serviceEnv('crypto', { env, natsUrl, databaseUrl, port, secrets }));
  }
  await Promise.all([...children.keys()].map((s) => announceWhenReady(s)));
  if (env.DEMO_MODE === 'true') {
    const demo = await import('./demo/start-demo.mjs');
    cleanups.push(await demo.startDemo({ root, env, portBase, secrets, dataDir, log: say }));
  }
  say('all services ready. Press Ctrl-C to stop.');
}

async function provideNats() {
  if (env.NATS_URL) return env.NATS_URL;
  const port = Number(env.RELAY_LOCAL_NATS_PORT ?? 4222);
  if (await isPortOpen(port)) {
    say(`using the NATS already listening on 127.0.0.1:${port}`);
    return `nats://127.0.0.1:${port}`;
  }
  const nats = await startLocalNats({ dataDir, port, log: say });
  cleanups.push(nats.stop);
  return nats.url;
}

async function providePostgres() {
  if (env.DATABASE_URL) return env.DATABASE_URL;
  const port = Number(env.RELAY_LOCAL_PG_PORT ?? 5432);
  if (await isPortOpen(port)) {
    const url = `postgres://postgres@127.0.0.1:${port}/relay`;
    say(
      `using the Postgres already listening on 127.0.0.1:${port} (database "relay"; set DATABASE_URL to choose)`,
    );
    await ensureDatabase(url);
    return url;
  }
  const pg = await ensureLocalPostgres({ dataDir, port, log: say });
  cleanups.push(pg.stop);
  return pg.url;
}

function startService(service, serviceEnvironment, restarts = 0) {
  const child = spawn(process.execPath, [join(root, `dist/apps/${service.split('#')[0]}/src/main.js`)], {
    cwd: root,
    env: serviceEnvironment,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  say(`${service} started (pid ${child.pid})`);
  const startedAt = Date.now();
  children.set(service, { child, port: Number(serviceEnvironment.HTTP_PORT) });
  child.on('exit', (code, signal) => {
    say(`${service} (pid ${child.pid}) exited with ${signal ? `signal ${signal}` : `code ${code}`}`);
    if (stopping) return;
    // Supervise like an orchestrator would: restart with backoff, give up on a crash loop.
    const quick = Date.now() - startedAt < 10_000;
    const n = quick ? restarts + 1 : 0;
    if (n > 5) {
      say(`${service} keeps failing; stopping the relay`);
      void shutdown(1);
      return;
    }
    setTimeout(
      () => !stopping && startService(service, serviceEnvironment, n),
      Math.min(500 * 2 ** n, 10_000),
    );
  });
}

async function announceWhenReady(service) {
  const { port } = children.get(service);
  const deadline = Date.now() + 120_000;
  while (!stopping && Date.now() < deadline) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/ready`);
      if (r.status === 200) {
        say(
          `${service} ready on http://127.0.0.1:${port} (health /health, readiness /ready, metrics /metrics)`,
        );
        return;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  if (!stopping) say(`${service} did not become ready on port ${port}`);
}

async function shutdown(exitCode = 0) {
  if (stopping) return;
  stopping = true;
  say('stopping services');
  const exits = [...children.entries()].map(
    ([service, { child }]) =>
      new Promise((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res(child.exitCode === 0);
        child.once('exit', (code) => res(code === 0));
        child.kill('SIGTERM');
        setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 20_000).unref();
        void service;
      }),
  );
  const clean = (await Promise.all(exits)).every(Boolean);
  // A terminal's Ctrl-C reaches the local servers too; a stop() of an already-stopped one must not hang.
  for (const stop of cleanups.reverse()) {
    const bounded = new Promise((res) => setTimeout(res, 10_000).unref());
    await Promise.race([stop().catch((err) => say(`cleanup: ${err.message}`)), bounded]);
  }
  say(clean && exitCode === 0 ? 'stopped cleanly' : 'stopped with errors');
  process.exit(clean ? exitCode : 1);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

main().catch(async (err) => {
  say(`cannot start: ${err.message}`);
  await shutdown(1);
});
