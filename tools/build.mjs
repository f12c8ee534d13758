// Compiles apps and libs to dist/ (incremental) and rewrites @relay/* imports to relative paths.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);

for (const [tool, args] of [
  ['tsc', ['-p', 'tsconfig.build.json']],
  ['tsc-alias', ['-p', 'tsconfig.build.json']],
]) {
  const r = spawnSync(bin(tool), args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`build: ${tool} failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}
