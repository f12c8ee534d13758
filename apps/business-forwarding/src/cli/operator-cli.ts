/**
 * Operator CLI over the operator API. Usage: node dist/apps/business-forwarding/src/cli/operator-cli.js
 * <command> [--flag value ...]. RELAY_ADMIN_URL (default http://127.0.0.1:8081) and OPERATOR_TOKEN come
 * from the environment: a credential on the command line would show in process lists and shell history.
 */
type Flags = Record<string, string>;
type Route = [method: string, path: (f: Flags) => string, body?: (f: Flags) => unknown];

const num = (v?: string) => (v === undefined ? undefined : Number(v));
const need = (f: Flags, k: string) => {
  const v = f[k];
  if (v === undefined) throw new UsageError(`--${k} is required`);
  return encodeURIComponent(v);
};

class UsageError extends Error {}

export const COMMANDS: Record<string, Route> = {
  'businesses:create': [
    'POST',
    () => '/businesses',
    (f) => ({
      waba_id: f.waba,
      name: f.name,
      app_secret: f['app-secret'],
      messaging_limit: num(f['messaging-limit']),
    }),
  ],
  'businesses:list': ['GET', () => '/businesses'],
  'businesses:get': ['GET', (f) => `/businesses/${need(f, 'waba')}`],
  'businesses:update': [
    'PATCH',
    (f) => `/businesses/${need(f, 'waba')}`,
    (f) => ({ name: f.name, status: f.status, messaging_limit: num(f['messaging-limit']) }),
  ],
  'secret:rotate': ['PUT', (f) => `/businesses/${need(f, 'waba')}/app_secret`, () => ({})],
  'numbers:add': [
    'POST',
    (f) => `/businesses/${need(f, 'waba')}/phone_numbers`,
    (f) => ({
      phone_number_id: f.id,
      display_phone_number: f.display,
      verified_name: f.name,
      data_localization_region: f.region,
    }),
  ],
  'numbers:list': ['GET', (f) => `/businesses/${need(f, 'waba')}/phone_numbers`],
  'numbers:get': ['GET', (f) => `/phone_numbers/${need(f, 'id')}`],
  'numbers:limits': [
    'PATCH',
    (f) => `/phone_numbers/${need(f, 'id')}`,
    (f) => ({
      throughput_mps: num(f.throughput),
      pair_burst: num(f['pair-burst']),
      pair_refill_ms: num(f['pair-refill-ms']),
    }),
  ],
  'tokens:issue': [
    'POST',
    (f) => `/businesses/${need(f, 'waba')}/tokens`,
    (f) => ({ label: f.label, expires_in_seconds: num(f['expires-in']) }),
  ],
  'tokens:list': ['GET', (f) => `/businesses/${need(f, 'waba')}/tokens`],
  'tokens:expire': [
    'PATCH',
    (f) => `/businesses/${need(f, 'waba')}/tokens/${need(f, 'id')}`,
    (f) => ({ expires_at: f.at ?? new Date().toISOString() }),
  ],
  'tokens:revoke': ['DELETE', (f) => `/businesses/${need(f, 'waba')}/tokens/${need(f, 'id')}`],
  'webhook:set': [
    'PUT',
    (f) => `/businesses/${need(f, 'waba')}/webhook`,
    (f) => ({
      callback_url: f.url,
      verify_token: f['verify-token'],
      max_concurrency: num(f['max-concurrency']),
      max_events_per_post: num(f['max-events-per-post']),
      timeout_ms: num(f['timeout-ms']),
    }),
  ],
  'webhook:get': ['GET', (f) => `/businesses/${need(f, 'waba')}/webhook`],
  'webhook:delete': ['DELETE', (f) => `/businesses/${need(f, 'waba')}/webhook`],
  'webhook:attempts': [
    'GET',
    (f) => `/businesses/${need(f, 'waba')}/webhook/attempts?limit=${num(f.limit) ?? 100}`,
  ],
  'webhook:dead-letters': [
    'GET',
    (f) => `/businesses/${need(f, 'waba')}/webhook/dead_letters?limit=${num(f.limit) ?? 100}`,
  ],
  'webhook:replay': [
    'POST',
    (f) => `/businesses/${need(f, 'waba')}/webhook/dead_letters/replay`,
    (f) => ({ ids: f.ids?.split(',') }),
  ],
  'erase:user': [
    'POST',
    (f) => `/businesses/${need(f, 'waba')}/erasures`,
    (f) => ({ scope: 'user', wa_id: f['wa-id'] }),
  ],
  'erase:business': ['POST', (f) => `/businesses/${need(f, 'waba')}/erasures`, () => ({ scope: 'business' })],
  'erase:status': ['GET', (f) => `/erasures/${need(f, 'id')}`],
};

export function parseArgs(argv: string[]): { command: string; flags: Flags } {
  const [command, ...rest] = argv;
  const flags: Flags = {};
  for (let i = 0; i < rest.length; i++) {
    const m = /^--([a-z][a-z-]*)$/.exec(rest[i]);
    if (!m || rest[i + 1] === undefined) throw new UsageError(`unexpected argument ${rest[i]}`);
    flags[m[1]] = rest[++i];
  }
  return { command: command ?? '', flags };
}

async function main(): Promise<number> {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  let parsed: { command: string; flags: Flags };
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const route = COMMANDS[parsed.command];
  if (!route) {
    process.stderr.write(
      `usage: operator-cli <command> [--flag value ...]\ncommands: ${Object.keys(COMMANDS).join(', ')}\n`,
    );
    return 2;
  }
  const token = process.env.OPERATOR_TOKEN;
  if (!token) {
    process.stderr.write('OPERATOR_TOKEN is not set\n');
    return 2;
  }
  const base = (process.env.RELAY_ADMIN_URL ?? 'http://127.0.0.1:8081').replace(/\/$/, '');
  const [method, path, body] = route;
  let res: Response;
  try {
    const payload = body ? JSON.stringify(body(parsed.flags)) : undefined;
    res = await fetch(`${base}/admin/v1${path(parsed.flags)}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(payload ? { 'Content-Type': 'application/json' } : {}),
      },
      body: payload,
    });
  } catch (err) {
    process.stderr.write(`${err instanceof UsageError ? '' : 'request failed: '}${(err as Error).message}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
  out(await res.text());
  return res.ok ? 0 : 1;
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
