import { createInterface } from 'node:readline/promises';
import { DeviceClient, FileStateStore, type IncomingMessage } from '@relay/device-sdk';

export interface CliIo {
  out: (line: unknown) => void;
  err: (text: string) => void;
}

export interface Common {
  store: string;
  passphrase: string;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

async function open(c: Common, server?: string, profileName?: string): Promise<DeviceClient> {
  return DeviceClient.open({ store: new FileStateStore(c.store, c.passphrase), server, profileName });
}

async function prompt(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/** Verifies the number (code from --code, the demo echo, or a prompt) and registers this device. */
export async function register(
  c: Common,
  o: { server: string; phone: string; code?: string; name?: string },
  io: CliIo,
): Promise<void> {
  const client = await open(c, o.server);
  if (client.address)
    throw new UsageError(
      `this store is already registered as ${client.address.wa_id}.${client.address.device_id}`,
    );
  const session = await client.startVerification(o.phone);
  const code = o.code ?? session.demo_code ?? (await prompt(`verification code sent to +${o.phone}: `));
  const res = await client.register(session.session_id, code, o.name);
  io.out({ registered: { wa_id: res.wa_id, device_id: res.device_id }, keys: await client.keyCounts() });
}

/**
 * Sends one text to a business and waits until the relay has stored it durably. The profile name, if
 * given, travels with the message (the business's webhook shows it as contacts[].profile.name).
 */
export async function send(
  c: Common,
  o: { to: string; text: string; profileName?: string },
  io: CliIo,
): Promise<void> {
  const client = await open(c, undefined, o.profileName);
  try {
    await client.connect();
    const r = await client.sendText(o.to, o.text);
    io.out({ sent: { to: o.to, envelope_id: r.envelope_id, duplicate: r.duplicate } });
  } finally {
    await client.close();
  }
}

/** Prints each incoming message as a JSON line; optionally marks it read; stops after --count. */
export async function listen(
  c: Common,
  o: { count?: number; read: boolean; timeoutMs?: number },
  io: CliIo,
): Promise<void> {
  const client = await open(c);
  let seen = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = o.timeoutMs
      ? setTimeout(() => reject(new UsageError('timed out waiting for messages')), o.timeoutMs)
      : undefined;
    const finish = () => {
      clearTimeout(timer);
      resolve();
    };
    client.on('message', (m: IncomingMessage) => {
      io.out({ message: m });
      if (o.read)
        void client
          .markRead(m.phone_number_id, [m.wamid])
          .catch((e: Error) => io.err(`read receipt failed: ${e.message}`));
      seen++;
      if (o.count !== undefined && seen >= o.count) setTimeout(finish, 200);
    });
    client.on('read', (r) => io.out({ read_by_business: r }));
    client.on('decryption_failed', (f) => io.out({ decryption_failed: f }));
    client.on('failure', (f) => io.out({ failure: f }));
    client.on('identity_changed', (e) => io.out({ identity_changed: e }));
    client.on('closed', (e) => reject(new UsageError(`connection closed for good: ${e.code} ${e.reason}`)));
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    client.connect().catch(reject);
  }).finally(() => client.close());
}

/** Shows the server's prekey counts and uploads a new batch when they run low. */
export async function keys(c: Common, o: { refill: boolean }, io: CliIo): Promise<void> {
  const client = await open(c);
  io.out({ keys: o.refill ? await client.refillPrekeys(true) : await client.keyCounts() });
}
