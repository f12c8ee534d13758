// Applies every service's migrations (each to its own schema). Uses the built data sources in dist/,
// so the CLI and the services run exactly the same migration code. DATABASE_URL selects the database;
// a service's own <SERVICE>_DATABASE_URL overrides it.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { migrate } = require(join(root, 'dist/libs/platform/src/index.js'));
export const SERVICES = ['gateway', 'crypto', 'business-forwarding', 'storage'];

export async function migrateAll(env = process.env, log = console.log) {
  for (const service of SERVICES) {
    const url = env[`${service.toUpperCase().replace(/-/g, '_')}_DATABASE_URL`] ?? env.DATABASE_URL;
    if (!url) throw new Error('DATABASE_URL is required but not set');
    const mod = require(join(root, `dist/apps/${service}/src/data-source.js`));
    const factory = Object.values(mod).find((v) => typeof v === 'function' && v.name.endsWith('DataSource'));
    const ds = factory(url, 2);
    try {
      const applied = await migrate(ds);
      log(`${service}: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}`);
    } finally {
      // A DataSource that never connected cannot be destroyed; that error would hide the real one.
      if (ds.isInitialized) await ds.destroy();
    }
    if (typeof mod.migrateExtra === 'function') await mod.migrateExtra(env, log);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  migrateAll().catch((err) => {
    console.error(`migration failed: ${err.message}`);
    process.exit(1);
  });
}
