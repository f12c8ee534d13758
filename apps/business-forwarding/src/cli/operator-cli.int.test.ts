/** The operator CLI (built to dist/ by npm test) against a real business-forwarding over HTTP. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OPERATOR_TOKEN, startHarness, type Harness } from '../test-support/harness.test';

const CLI = join(__dirname, '../../../../dist/apps/business-forwarding/src/cli/operator-cli.js');
const run = promisify(execFile);
let h: Harness;

const cli = async (args: string[], token = OPERATOR_TOKEN) => {
  try {
    const r = await run(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', RELAY_ADMIN_URL: h.url, OPERATOR_TOKEN: token },
    });
    return { code: 0, out: r.stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
};

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

it('manages a business, its number and tokens', async () => {
  const created = await cli(['businesses:create', '--waba', '5550001', '--name', 'Cli Shop']);
  expect(created.code).toBe(0);
  expect(JSON.parse(created.out)).toMatchObject({ waba_id: '5550001', app_secret: expect.any(String) });
  expect(
    (await cli(['numbers:add', '--waba', '5550001', '--id', '5550002', '--display', '+1 555 0002'])).code,
  ).toBe(0);
  expect(
    JSON.parse((await cli(['numbers:limits', '--id', '5550002', '--throughput', '200'])).out).limits,
  ).toMatchObject({
    throughput_mps: 200,
  });
  const token = JSON.parse((await cli(['tokens:issue', '--waba', '5550001', '--label', 'ci'])).out);
  expect(token.access_token).toMatch(/^rly_/);
  expect((await cli(['tokens:revoke', '--waba', '5550001', '--id', token.id])).code).toBe(0);
  const list = JSON.parse((await cli(['tokens:list', '--waba', '5550001'])).out);
  expect(list.data[0]).toMatchObject({ id: token.id, revoked_at: expect.any(String) });
  expect(JSON.stringify(list)).not.toContain(token.access_token);
  expect((await cli(['businesses:get', '--waba', 'nope'])).code).toBe(1);
  expect((await cli(['businesses:list'], 'wrong-token')).code).toBe(1);
  expect((await cli(['no-such-command'])).code).toBe(2);
});
