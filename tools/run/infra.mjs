// Local NATS and Postgres for `npm start` when none is configured.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export function isPortOpen(port, host = '127.0.0.1') {
  return new Promise((res) => {
    const s = connect({ port, host });
    s.once('connect', () => s.end(() => res(true)));
    s.once('error', () => res(false));
    s.setTimeout(1000, () => {
      s.destroy();
      res(false);
    });
  });
}

async function waitForPort(port, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await isPortOpen(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
}

function readOrCreateSecret(file, make) {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const v = make();
  writeFileSync(file, v + '\n', { mode: 0o600 });
  return v;
}

/** nats-server from PATH with JetStream and store encryption (key generated once under the data dir). */
export async function startLocalNats({ dataDir, port, log }) {
  const which = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  const bin = which.stdout.trim();
  if (!bin) {
    throw new Error(
      'NATS is not configured (NATS_URL), nothing listens on 127.0.0.1:' +
        port +
        ' and nats-server is not on PATH. Install it (Debian/Ubuntu: apt-get install nats-server) or run ' +
        '`docker compose up -d nats`, or set NATS_URL.',
    );
  }
  const dir = join(dataDir, 'nats');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = readOrCreateSecret(join(dataDir, 'nats-store.key'), () => randomBytes(32).toString('hex'));
  const conf = join(dir, 'nats.conf');
  writeFileSync(
    conf,
    `listen: 127.0.0.1:${port}\njetstream {\n  store_dir: ${JSON.stringify(dir)}\n  cipher: aes\n  key: ${JSON.stringify(key)}\n}\n`,
    { mode: 0o600 },
  );
  chmodSync(conf, 0o600);
  log(`starting nats-server (JetStream, encrypted store) on 127.0.0.1:${port}`);
  // Own process group: it stops when the relay says so, after the services have drained.
  const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
  try {
    await waitForPort(port, 15_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`nats-server did not start: ${err.message}\n${stderr}`);
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: () =>
      new Promise((res) => {
        if (child.exitCode !== null) return res();
        child.once('exit', () => res());
        child.kill('SIGTERM');
      }),
  };
}

/** An embedded PostgreSQL with its data under the data dir, in its own process group. */
export async function ensureLocalPostgres({ dataDir, port, log }) {
  const password = readOrCreateSecret(join(dataDir, 'postgres.password'), () =>
    randomBytes(18).toString('base64url'),
  );
  const script = join(dirname(fileURLToPath(import.meta.url)), 'embedded-postgres.mjs');
  log(`starting embedded PostgreSQL on 127.0.0.1:${port} (data in ${join(dataDir, 'postgres')})`);
  const child = spawn(process.execPath, [script, dataDir, String(port), password], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out = (out + d).slice(-4000)));
  const exited = new Promise((res) => child.once('exit', res));
  const deadline = Date.now() + 120_000;
  while (!/^ready$/m.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`embedded PostgreSQL did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/relay`;
  await ensureDatabase(url);
  return {
    url,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Creates the database named in the URL when it does not exist yet. */
export async function ensureDatabase(url) {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const c = new pg.Client({ connectionString: admin.toString() });
  await c.connect();
  try {
    const r = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (r.rowCount === 0) await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
  } finally {
    await c.end();
  }
}
