// What both storage benchmarks need around their measurement: a fresh migrated database, the built
// storage service as its own process (ready once its delivery consumer exists), and the teardown.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const { Client } = require('pg');

/** A new database `<prefix>_<random>` with storage's migrations applied (from `root`'s dist/). */
export async function createStorageDatabase(root, adminUrl, prefix) {
  const { migrate } = require(join(root, 'dist/libs/platform/src/index.js'));
  const { storageDataSource } = require(join(root, 'dist/apps/storage/src/data-source.js'));
  const dbName = `${prefix}_${randomBytes(4).toString('hex')}`;
  const dbUrl = Object.assign(new URL(adminUrl), { pathname: `/${dbName}` }).toString();
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${dbName}"`);
  const ds = storageDataSource(dbUrl, 2);
  await migrate(ds);
  await ds.destroy();
  return { admin, dbName, dbUrl };
}

/** The built service (`root`'s dist/) as a child process; `nodeArgs` go before the entry, `env` on top. */
export function spawnStorage(root, { dbUrl, natsUrl, subjectRoot, nodeArgs = [], env = {} }) {
  return spawn(process.execPath, [...nodeArgs, join(root, 'dist/apps/storage/src/main.js')], {
    env: {
      ...process.env,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      NATS_URL: natsUrl,
      NATS_SUBJECT_ROOT: subjectRoot,
      DATABASE_URL: dbUrl,
      MASTER_KEY: `bench:${randomBytes(32).toString('base64')}`,
      PURGE_INTERVAL_MS: '3600000',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/** Resolves once the service has created its delivery consumer (its streams and consumers exist). */
export async function storageReady(jsm, subjectRoot) {
  await until(async () => {
    try {
      await jsm.consumers.info(`${subjectRoot.toUpperCase()}_DELIVERY`, 'storage-delivery');
      return true;
    } catch {
      return false;
    }
  }, 30_000);
}

/** Stops the service, deletes the run's streams, closes NATS and drops the database. */
export async function teardown({ child, nc, subjectRoot, admin, dbName }) {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const jsm = await nc.jetstreamManager();
  for await (const s of jsm.streams.list()) {
    if (s.config.name.startsWith(`${subjectRoot.toUpperCase()}_`)) await jsm.streams.delete(s.config.name);
  }
  await nc.close();
  await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  await admin.end();
}

export async function until(fn, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error('benchmark timed out waiting for storage');
}
