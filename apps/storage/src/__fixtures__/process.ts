import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const MAIN = join(__dirname, '../../../../dist/apps/storage/src/main.js');

/** The built service as its own OS process (what kill -9 needs); `npm test` builds dist/ first. */
export class StorageProcess {
  private child: ChildProcess | undefined;
  output = '';

  constructor(private readonly env: NodeJS.ProcessEnv) {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run the build (npm test does)`);
  }

  start(extra: Record<string, string> = {}): void {
    this.child = spawn(process.execPath, [MAIN], {
      env: { ...this.env, NODE_OPTIONS: '', LOG_LEVEL: 'warn', ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-20_000);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
  }

  /** kill -9: no shutdown hook, no drain, no flush. */
  async kill9(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
    this.child = undefined;
  }
}
