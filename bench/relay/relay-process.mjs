// The relay for the benchmark: the README's run command (tools/run-relay.mjs) against the local NATS
// and a fresh Postgres database, the four services as separate processes; plus the SMS hook stand-in.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Ports from below the ephemeral range (the tests' helper; the bench runs after the build).
const { freePorts } = createRequire(import.meta.url)('../../dist/libs/testing/src/index.js');

/** The SMS provider stand-in: keeps the verification codes the gateway POSTs. */
export async function codeHook(token) {
  const codes = new Map();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (req.headers.authorization !== `Bearer ${token}`) return void res.writeHead(401).end();
      const m = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      codes.set(m.session_id, m.code);
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}/sms`,
    async code(sessionId) {
      for (let i = 0; i < 200; i++) {
        if (codes.has(sessionId)) return codes.get(sessionId);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('no verification code arrived');
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

export async function startRelay({ root, env }) {
  const portBase = await freePorts(5);
  const dataDir = mkdtempSync(join(tmpdir(), 'relay-bench-'));
  const operatorToken = `op_${randomBytes(24).toString('hex')}`;
  const child = spawn(process.execPath, [join(root, 'tools/run-relay.mjs')], {
    cwd: root,
    detached: true,
    env: {
      ...process.env,
      ...env,
      RELAY_PORT_BASE: String(portBase),
      RELAY_DATA_DIR: dataDir,
      RELAY_SKIP_BUILD: 'true',
      OPERATOR_TOKEN: operatorToken,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d) => (out = (out + d).slice(-200_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((r) => child.once('exit', r));
  while (!out.includes('[relay] all services ready')) {
    if (child.exitCode !== null || out.includes('[relay] stopping'))
      throw new Error(`relay did not start:\n${out.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const pidsOf = (service) =>
    [...out.matchAll(new RegExp(`\\[relay\\] ${service} started \\(pid (\\d+)\\)`, 'g'))].map((m) =>
      Number(m[1]),
    );
  return {
    portBase,
    operatorToken,
    url: (offset) => `http://127.0.0.1:${portBase + offset}`,
    /** Current pid(s) of a service (the last started one of each replica name). */
    pids: (service) => [service, `${service}#2`].map((s) => pidsOf(s).at(-1)).filter(Boolean),
    output: () => out,
    async stop() {
      if (child.exitCode === null) process.kill(-child.pid, 'SIGINT');
      const t = setTimeout(() => process.kill(-child.pid, 'SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
