import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { waitFor } from '@relay/testing';
import type { EventPayload } from '@relay/protocol';
import { TestWorld } from './test-support/gateway-harness.test';
import { StorageStandIn } from './test-support/storage-stand-in.test';
import { BusinessStandIn } from './test-support/business-stand-in.test';

// The device CLI as users and the system tests run it: the built binary in a child process, against a
// real gateway (Postgres, NATS, HTTP, WebSocket). crypto and storage are stand-ins on real NATS.
const CLI = resolve(__dirname, '../../../dist/apps/device-cli/src/main.js');
const world = new TestWorld('gwcli');
const PNID = '1500000005';
const WA = '4915100000041';
let url: string;
let dir: string;
let storage: StorageStandIn;
let business: BusinessStandIn;
const statuses: EventPayload<'status.update'>[] = [];

interface Run {
  code: number;
  lines: Record<string, unknown>[];
  stderr: string;
}

function cli(
  args: string[],
  onStdout?: (line: Record<string, unknown>) => void,
  stdinAfter?: () => Promise<string>,
) {
  const child = spawn(process.execPath, [CLI, ...args, '--store', join(dir, 'device.json')], {
    env: { ...process.env, NODE_OPTIONS: '', RELAY_DEVICE_PASSPHRASE: 'a long test passphrase' },
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = JSON.parse(buf.slice(0, i)) as Record<string, unknown>;
      buf = buf.slice(i + 1);
      lines.push(line);
      onStdout?.(line);
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  if (stdinAfter) void stdinAfter().then((text) => child.stdin.end(`${text}\n`));
  return new Promise<Run>((res) => child.on('exit', (code) => res({ code: code ?? -1, lines, stderr })));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'device-cli-'));
  await world.init();
  ({ url } = await world.gateway());
  storage = new StorageStandIn(await world.bus('storage')).start();
  business = await new BusinessStandIn(await world.bus('crypto'), PNID).start();
  const observer = await world.bus('business-forwarding');
  await observer.consume('status.update', { durable: 'cli-obs' }, async (s) => void statuses.push(s));
});

afterAll(async () => {
  await world.close();
  await rm(dir, { recursive: true, force: true });
});

it('registers (code typed at the prompt), sends, and listens with read receipts', async () => {
  const before = world.codes.calls.length;
  const reg = await cli(['register', '--server', url, '--phone', WA], undefined, async () => {
    await waitFor(() => world.codes.calls.length > before);
    return world.codes.calls[before].body.code;
  });
  expect(reg.stderr).toContain('verification code sent to +4915100000041');
  expect(reg.code).toBe(0);
  expect(reg.lines[0]).toMatchObject({
    registered: { wa_id: WA, device_id: 1 },
    keys: { prekeys: 100, kyber_prekeys: 100 },
  });

  const sent = await cli([
    'send',
    '--to',
    PNID,
    '--text',
    'hello from the cli',
    '--profile-name',
    'Cli User',
  ]);
  expect(sent.code).toBe(0);
  const envelopeId = (sent.lines[0] as { sent: { envelope_id: string } }).sent.envelope_id;
  const got = await waitFor(() => business.received.find((r) => r.envelope.envelope_id === envelopeId));
  expect(got?.plaintext.content).toEqual({ type: 'text', text: { body: 'hello from the cli' } });
  expect(got?.envelope.profile_name).toBe('Cli User');

  const reply = await business.encryptFor({ wa_id: WA, device_id: 1 }, 'hello cli user');
  storage.enqueue({ wa_id: WA, device_id: 1 }, reply, false);
  const listened = await cli(['listen', '--count', '1', '--read', '--timeout', '20']);
  expect(listened.code).toBe(0);
  expect(listened.lines[0]).toMatchObject({
    message: {
      wamid: reply.wamid,
      phone_number_id: PNID,
      content: { type: 'text', text: { body: 'hello cli user' } },
    },
  });
  await waitFor(() => statuses.find((s) => s.wamid === reply.wamid && s.status === 'read'));
  expect(storage.queued({ wa_id: WA, device_id: 1 })).toEqual([]);
});

it('reports bad input clearly: usage errors exit 2, a wrong passphrase exits 1', async () => {
  const usage = await cli(['send', '--to', PNID]);
  expect(usage.code).toBe(2);
  expect(usage.stderr).toContain('send needs --text');
  const child = spawn(process.execPath, [CLI, 'keys', '--store', join(dir, 'device.json')], {
    env: { ...process.env, NODE_OPTIONS: '', RELAY_DEVICE_PASSPHRASE: 'not the passphrase' },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  expect(await new Promise((r) => child.on('exit', r))).toBe(1);
  expect(stderr).toContain('wrong passphrase or corrupted device state');
});
