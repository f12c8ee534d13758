// The README's test command: builds, then runs every Jest project on Node >= 24 (libsignal-client is
// ESM-only; Jest loads it through require(esm) with --experimental-vm-modules). Extra args go to Jest.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  console.error(
    `tests need Node >= 24 (found ${process.version}); run them through npm so node_modules/.bin/node is used`,
  );
  process.exit(1);
}
const build = spawnSync(process.execPath, [join(root, 'tools/build.mjs')], { stdio: 'inherit', cwd: root });
if (build.status !== 0) process.exit(build.status ?? 1);

const env = {
  ...process.env,
  NX_NO_CLOUD: 'true',
  NX_DAEMON: 'false',
  NODE_OPTIONS: [process.env.NODE_OPTIONS, '--experimental-vm-modules', '--no-warnings=ExperimentalWarning']
    .filter(Boolean)
    .join(' '),
};
const jest = (...args) =>
  spawnSync(process.execPath, [join(root, 'node_modules/jest/bin/jest.js'), '--maxWorkers=2', ...args], {
    stdio: 'inherit',
    cwd: root,
    env,
  }).status ?? 1;

// The fault test kills and restarts every process of a relay under load; it runs on its own, after the
// rest, so its timing is not at the mercy of the other test files sharing the two cores.
const SOLO = 'test/system/faults.test.ts';
const extra = process.argv.slice(2);
if (extra.length > 0) process.exit(jest(...extra));
const rest = jest('--testPathIgnorePatterns', '/node_modules/', '/dist/', '/.data/', SOLO);
const solo = jest(SOLO);
process.exit(rest || solo);
