#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { DeviceApiError, FrameError, KeyStoreError } from '@relay/device-sdk';
import { UsageError, keys, listen, register, send, type CliIo, type Common } from './commands';

const USAGE = `usage: device-cli <command> [options]

  register --server <url> --phone <wa_id> [--code <6 digits>] [--name <name>]
  send     --to <phone_number_id> --text <text> [--profile-name <name>]
  listen   [--count <n>] [--read] [--timeout <seconds>]
  keys     [--refill]

common:   --store <file>   (default: $RELAY_DEVICE_STORE or ./device-state.json)
the store's passphrase is read from $RELAY_DEVICE_PASSPHRASE (never from the command line).
output: one JSON object per line on stdout; errors on stderr; exit code 1 on error, 2 on usage.`;

const io: CliIo = {
  out: (line) => process.stdout.write(`${JSON.stringify(line)}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      store: { type: 'string' },
      server: { type: 'string' },
      phone: { type: 'string' },
      code: { type: 'string' },
      name: { type: 'string' },
      to: { type: 'string' },
      text: { type: 'string' },
      'profile-name': { type: 'string' },
      count: { type: 'string' },
      timeout: { type: 'string' },
      read: { type: 'boolean', default: false },
      refill: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const passphrase = process.env.RELAY_DEVICE_PASSPHRASE;
  if (!passphrase) throw new UsageError('set RELAY_DEVICE_PASSPHRASE to the passphrase of the device store');
  const common: Common = {
    store: values.store ?? process.env.RELAY_DEVICE_STORE ?? 'device-state.json',
    passphrase,
  };
  const need = (v: string | undefined, flag: string) => {
    if (!v) throw new UsageError(`${command} needs --${flag}`);
    return v;
  };
  const num = (v: string | undefined, flag: string) => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new UsageError(`--${flag} must be a whole number`);
    return Number(v);
  };
  switch (command) {
    case 'register':
      return register(
        common,
        {
          server: need(values.server, 'server'),
          phone: need(values.phone, 'phone'),
          code: values.code,
          name: values.name,
        },
        io,
      );
    case 'send':
      return send(
        common,
        { to: need(values.to, 'to'), text: need(values.text, 'text'), profileName: values['profile-name'] },
        io,
      );
    case 'listen': {
      const seconds = num(values.timeout, 'timeout');
      return listen(
        common,
        {
          count: num(values.count, 'count'),
          read: values.read,
          timeoutMs: seconds ? seconds * 1000 : undefined,
        },
        io,
      );
    }
    case 'keys':
      return keys(common, { refill: values.refill }, io);
    default:
      throw new UsageError(command ? `unknown command "${command}"` : 'no command given');
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      io.err(`${(err as Error).message}\n\n${USAGE}`);
      process.exit(2);
    }
    if (err instanceof DeviceApiError) io.err(`gateway refused (${err.status} ${err.code}): ${err.message}`);
    else if (err instanceof FrameError) io.err(`gateway refused (${err.code}): ${err.message}`);
    else if (err instanceof KeyStoreError) io.err(`device store: ${err.message}`);
    else io.err(`failed: ${(err as Error).message}`);
    process.exit(1);
  },
);
