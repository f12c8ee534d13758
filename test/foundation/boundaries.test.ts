import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ESLint } from 'eslint';

const ROOT = join(__dirname, '..', '..');

/** Lints a fixture as if it were part of the tree (fixtures are ignored by `npm run lint`). */
async function lintFixture(relPath: string) {
  const eslint = new ESLint({ cwd: ROOT, ignore: false });
  const [result] = await eslint.lintText(readFileSync(join(ROOT, relPath), 'utf8'), {
    filePath: join(ROOT, relPath),
  });
  return result.messages.filter((m) => m.ruleId === '@nx/enforce-module-boundaries').map((m) => m.message);
}

describe('Nx module boundaries', () => {
  beforeAll(() => {
    // The rule needs the project graph; without it the rule would silently skip.
    execFileSync(join(ROOT, 'node_modules/.bin/nx'), ['show', 'projects'], {
      cwd: ROOT,
      env: { ...process.env, NX_NO_CLOUD: 'true', NX_DAEMON: 'false' },
      stdio: 'ignore',
    });
  });

  it('fails lint when an app imports another app', async () => {
    const errors = await lintFixture('apps/gateway/src/__fixtures__/cross-app-import.ts');
    expect(errors.join('\n')).toMatch(/Projects cannot be imported by a relative or absolute path/);
  }, 60_000);

  it('fails lint when the contract lib imports NestJS', async () => {
    const errors = await lintFixture('libs/protocol/src/__fixtures__/contract-imports-nest.ts');
    expect(errors).toEqual([
      'A project tagged with "type:contract" is not allowed to import "@nestjs/common"',
    ]);
  }, 60_000);

  it('passes lint for an app importing only contract and infra libs', async () => {
    expect(await lintFixture('apps/gateway/src/main.ts')).toEqual([]);
  }, 60_000);
});
