import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTestDatabase,
  deleteStreams,
  freePort,
  freePorts,
  isPortFree,
  testSubjectRoot,
  TEST_NATS_URL,
  waitFor,
  type TestDatabase,
} from '@relay/testing';

const ROOT = join(__dirname, '..', '..');
const SERVICES = ['gateway', 'business-forwarding', 'crypto', 'storage'];

interface Run {
  child: ChildProcess;
  output: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns the README's run command in its own process group, as a terminal would. */
function npmStart(env: NodeJS.ProcessEnv): Run {
  let out = '';
  // As from a user's shell: no Jest flags, no NODE_ENV=test.
  const { NODE_OPTIONS: _ignored, NODE_ENV: _env, ...rest } = process.env;
  const child = spawn('npm', ['start'], { cwd: ROOT, env: { ...rest, ...env }, detached: true });
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.on('exit', (code, signal) => res({ code, signal })),
  );
  return { child, output: () => out, exit };
}

async function readyOn(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/ready`)).status === 200;
  } catch {
    return false;
  }
}

async function expectCleanStop(run: Run): Promise<void> {
  process.kill(-(run.child.pid as number), 'SIGINT');
  const { code, signal } = await run.exit;
  const out = run.output();
  for (const s of SERVICES)
    expect(out).toMatch(new RegExp(`\\[relay\\] ${s} \\(pid \\d+\\) exited with code 0`));
  expect(out).toContain('[relay] stopped cleanly');
  expect(out).not.toMatch(/exited with code [1-9]|exited with signal/);
  // The relay's own processes all exit 0 (asserted above from the supervisor's report). npm itself, once
  // its script has finished, re-raises the terminal's SIGINT on itself (shell convention: status 130).
  expect(code === 0 || signal === 'SIGINT').toBe(true);
}

describe('the README run command (npm start)', () => {
  let db: TestDatabase;
  const root = testSubjectRoot('run');
  const dataDir = mkdtempSync(join(tmpdir(), 'relay-run-'));

  beforeAll(async () => {
    db = await createTestDatabase('run');
  });
  afterAll(async () => {
    await db.drop();
    await deleteStreams(root);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts the four services against the given NATS and Postgres, ready within 60 s, and SIGINT stops all with 0', async () => {
    const base = await freePorts(4);
    const run = npmStart({
      DATABASE_URL: db.url,
      NATS_URL: TEST_NATS_URL,
      NATS_SUBJECT_ROOT: root,
      RELAY_PORT_BASE: String(base),
      RELAY_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
    });
    try {
      await waitFor(
        async () => (await Promise.all([0, 1, 2, 3].map((i) => readyOn(base + i)))).every(Boolean),
        60_000,
        250,
      );
    } catch (err) {
      run.child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n${run.output()}`);
    }
    await waitFor(() => run.output().includes('[relay] all services ready'), 10_000);
    for (let i = 0; i < SERVICES.length; i++)
      expect(run.output()).toContain(`${SERVICES[i]} ready on http://127.0.0.1:${base + i}`);
    await expectCleanStop(run);
  }, 120_000);

  it('starts its own NATS (JetStream, encrypted store) and embedded Postgres when none is configured or listening', async () => {
    const [pgPort, natsPort, base] = [await freePort(), await freePort(), await freePorts(4)];
    const ownDir = mkdtempSync(join(tmpdir(), 'relay-own-'));
    chmodSync(ownDir, 0o755);
    const { DATABASE_URL: _d, NATS_URL: _n, ...env } = process.env;
    const run = npmStart({
      ...env,
      RELAY_LOCAL_PG_PORT: String(pgPort),
      RELAY_LOCAL_NATS_PORT: String(natsPort),
      RELAY_PORT_BASE: String(base),
      RELAY_DATA_DIR: ownDir,
      LOG_LEVEL: 'warn',
    });
    try {
      await waitFor(
        async () => (await Promise.all([0, 1, 2, 3].map((i) => readyOn(base + i)))).every(Boolean),
        90_000,
        250,
      );
      const out = run.output();
      expect(out).toContain(`starting nats-server (JetStream, encrypted store) on 127.0.0.1:${natsPort}`);
      expect(out).toContain(`starting embedded PostgreSQL on 127.0.0.1:${pgPort}`);
      await expectCleanStop(run);
      // Its own servers are gone with it.
      expect(await isPortFree(pgPort)).toBe(true);
      expect(await isPortFree(natsPort)).toBe(true);
    } finally {
      if (run.child.exitCode === null && run.child.signalCode === null) {
        try {
          process.kill(-(run.child.pid as number), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      rmSync(ownDir, { recursive: true, force: true });
    }
  }, 180_000);
});
