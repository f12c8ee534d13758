// Demo mode only (DEMO_MODE=true): runs the demo business (demo-business.mjs) next to the relay. The demo
// business, its number and its credentials exist only here: they are created through the operator API
// at start, never written to any production configuration.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export async function startDemo({ root, env, portBase, secrets, dataDir, log }) {
  const child = spawn(process.execPath, [join(root, 'tools/demo/demo-business.mjs')], {
    cwd: root,
    env: {
      ...env,
      DEMO_RELAY_URL: `http://127.0.0.1:${portBase + 1}`,
      DEMO_GATEWAY_URL: `http://127.0.0.1:${portBase}`,
      DEMO_WEBHOOK_PORT: env.DEMO_WEBHOOK_PORT ?? String(portBase + 9),
      DEMO_STATE_FILE: join(dataDir, 'demo-business.json'),
      OPERATOR_TOKEN: secrets.OPERATOR_TOKEN,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    process.stdout.write(d);
  });
  const exited = new Promise((res) => child.once('exit', res));
  const deadline = Date.now() + 60_000;
  while (!out.includes('[demo] ready')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('the demo business did not start');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  log('demo business running (DEMO_MODE=true); see docs/demo.md');
  return async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  };
}
