/**
 * The relay as users run it: `npm start` (tools/run-relay.mjs) in its own process group, the four
 * services as separate OS processes (two crypto), against the NATS and Postgres the test names.
 * Not a test file itself (Jest runs only *.test.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, waitFor } from '@relay/testing';

const ROOT = join(__dirname, '..', '..', '..');
export const SERVICE_PORT_OFFSET: Record<string, number> = {
  gateway: 0,
  'business-forwarding': 1,
  crypto: 2,
  storage: 3,
  'crypto#2': 4,
};

export interface RelayOptions {
  natsUrl: string;
  databaseUrl: string;
  subjectRoot: string;
  env?: Record<string, string>;
}

/** Settings every system test uses: small pools (shared Postgres), fast webhook polling. */
export const SYSTEM_ENV: Record<string, string> = {
  NODE_ENV: 'production',
  LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
  DATABASE_POOL_SIZE: '3',
  // crypto needs more connections than 2 x its batches in flight.
  CRYPTO_BATCHES_IN_FLIGHT: '1',
  RELAY_CRYPTO_REPLICAS: '2',
  // npm test has just built dist/; a concurrent build by a parallel test must not race this one.
  RELAY_SKIP_BUILD: 'true',
  WEBHOOK_ALLOW_HTTP: 'true',
  WEBHOOK_POLL_MS: '50',
  WEBHOOK_BACKOFF_BASE_MS: '200',
  WEBHOOK_BACKOFF_MAX_MS: '2000',
  SHUTDOWN_TIMEOUT_MS: '5000',
  VERIFICATION_SENDER: 'http',
  RATE_LIMIT_DEVICE_SEND: '10000:1',
  RATE_LIMIT_DEVICE_BUSINESS_SEND: '10000:1',
  RATE_LIMIT_IP: '10000:1',
  RATE_LIMIT_VERIFICATION: '1000:1',
  DEFAULT_THROUGHPUT_MPS: '10000',
  DEFAULT_PAIR_BURST: '10000',
  DEFAULT_PAIR_REFILL_MS: '1',
};

export class Relay {
  readonly operatorToken = `op_${randomBytes(24).toString('hex')}`;
  readonly dataDir = mkdtempSync(join(tmpdir(), 'relay-sys-'));
  portBase = 0;
  private child?: ChildProcess;
  private out = '';
  private exited?: Promise<number | null>;

  constructor(private readonly opts: RelayOptions) {}

  get output(): string {
    return this.out;
  }
  url(service: string): string {
    return `http://127.0.0.1:${this.portBase + SERVICE_PORT_OFFSET[service]}`;
  }

  async start(): Promise<void> {
    this.portBase = await freePorts(5);
    const { NODE_OPTIONS: _jestFlags, ...rest } = process.env;
    const env = {
      ...rest,
      ...SYSTEM_ENV,
      NATS_URL: this.opts.natsUrl,
      DATABASE_URL: this.opts.databaseUrl,
      NATS_SUBJECT_ROOT: this.opts.subjectRoot,
      RELAY_PORT_BASE: String(this.portBase),
      RELAY_DATA_DIR: this.dataDir,
      OPERATOR_TOKEN: this.operatorToken,
      ...this.opts.env,
    };
    const child = spawn('npm', ['start'], { cwd: ROOT, env, detached: true });
    this.child = child;
    child.stdout?.on('data', (d) => (this.out += d));
    child.stderr?.on('data', (d) => (this.out += d));
    this.exited = new Promise((res) => child.on('exit', (code) => res(code)));
    await waitFor(
      () => this.out.includes('[relay] all services ready') || this.out.includes('[relay] stopping'),
      120_000,
      100,
    ).catch(() => undefined);
    if (!this.out.includes('[relay] all services ready'))
      throw new Error(`the relay did not start:\n${this.out.slice(-3000)}`);
  }

  /** The current pid of a service, from the supervisor's "started (pid N)" lines. */
  pid(service: string): number {
    const re = new RegExp(`\\[relay\\] ${service.replace('#', '\\#')} started \\(pid (\\d+)\\)`, 'g');
    const all = [...this.out.matchAll(re)];
    const last = all.at(-1);
    if (!last) throw new Error(`no pid for ${service}`);
    return Number(last[1]);
  }

  /** kill -9 one service; the run command's supervisor restarts it; resolves once it is ready again. */
  async kill9(service: string): Promise<void> {
    const before = this.pid(service);
    process.kill(before, 'SIGKILL');
    await waitFor(() => this.pid(service) !== before, 30_000, 50);
    // As long as the test waits for every service after a fault (a restart can queue behind the
    // supervisor's backoff and a loaded machine).
    await this.ready(service, 90_000);
  }

  async ready(service: string, timeoutMs = 60_000): Promise<void> {
    await waitFor(
      async () => (await fetch(`${this.url(service)}/ready`).catch(() => undefined))?.status === 200,
      timeoutMs,
      100,
    );
  }

  /** Ctrl-C as a terminal sends it; SIGKILL to the group if it does not stop in time. */
  /** Answers whether the run command reported a clean stop (every service exited 0). */
  async stop(): Promise<boolean> {
    const child = this.child;
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid, 'SIGINT');
      const timer = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), 30_000);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
    return this.out.includes('[relay] stopped cleanly');
  }

  /** An operator API call on business-forwarding. */
  admin(method: string, path: string, body?: unknown): Promise<Api> {
    return api(this.url('business-forwarding'), method, `/admin/v1${path}`, this.operatorToken, body);
  }

  /** A Cloud API call as a business makes it. */
  cloud(token: string, method: string, path: string, body?: unknown): Promise<Api> {
    return api(this.url('business-forwarding'), method, `/v23.0${path}`, token, body);
  }
}

/** Waits until fn finds something (30 s by default) and answers it. */
export async function until<T>(fn: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  return (await waitFor(fn, timeoutMs)) as T;
}

export interface Api {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are asserted field by field
  body: any;
}

export async function api(base: string, method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // non-JSON answers stay text so a failing assertion shows them
  }
  return { status: res.status, body: parsed } as Api;
}
