// The demo business (DEMO_MODE=true only, started by tools/run-relay.mjs): registers itself through the
// operator API, serves a webhook that checks X-Hub-Signature-256, prints what arrives and answers each
// text with an echo through the Cloud API. Its app secret and verify token are generated on first start
// and kept (mode 0600) in the relay's data directory.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';

const env = process.env;
const RELAY = env.DEMO_RELAY_URL;
const PORT = Number(env.DEMO_WEBHOOK_PORT);
export const DEMO_WABA = '1000000001';
export const DEMO_NUMBER = '1555000001';
const say = (msg) => process.stdout.write(`[demo] ${msg}\n`);

function state() {
  const file = env.DEMO_STATE_FILE;
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const s = { app_secret: randomBytes(24).toString('hex'), verify_token: randomBytes(12).toString('hex') };
  writeFileSync(file, JSON.stringify(s) + '\n', { mode: 0o600 });
  return s;
}

async function call(method, path, token, body) {
  const res = await fetch(`${RELAY}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const expectOk = (r, what, ok = [200, 201]) => {
  if (!ok.includes(r.status)) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r;
};

async function setUp(secrets, webhookUrl) {
  const op = (m, p, b) => call(m, `/admin/v1${p}`, env.OPERATOR_TOKEN, b);
  const b = await op('POST', '/businesses', {
    waba_id: DEMO_WABA,
    name: 'Demo Echo Shop',
    app_secret: secrets.app_secret,
  });
  // A restart of the demo finds its business in the database; the kept secret is set again.
  if (b.status === 409)
    expectOk(
      await op('PUT', `/businesses/${DEMO_WABA}/app_secret`, { app_secret: secrets.app_secret }),
      'secret',
    );
  else expectOk(b, 'create business');
  expectOk(
    await op('POST', `/businesses/${DEMO_WABA}/phone_numbers`, {
      phone_number_id: DEMO_NUMBER,
      display_phone_number: '+1 555 000 0001',
      verified_name: 'Demo Echo Shop',
    }),
    'add number',
    [201, 409],
  );
  const token = expectOk(await op('POST', `/businesses/${DEMO_WABA}/tokens`, { label: 'demo' }), 'token').body
    .access_token;
  expectOk(
    await op('PUT', `/businesses/${DEMO_WABA}/webhook`, {
      callback_url: webhookUrl,
      verify_token: secrets.verify_token,
    }),
    'webhook',
  );
  expectOk(
    await call('POST', `/v23.0/${DEMO_NUMBER}/register`, token, {
      messaging_product: 'whatsapp',
      pin: '000000',
    }),
    'register',
  );
  return token;
}

function signatureOk(raw, header, secret) {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`);
  const got = Buffer.from(String(header ?? ''));
  return got.length === expected.length && timingSafeEqual(got, expected);
}

async function echo(token, to, text) {
  const r = await call('POST', `/v23.0/${DEMO_NUMBER}/messages`, token, {
    messaging_product: 'whatsapp',
    to,
    type: 'text',
    text: { body: `echo: ${text}` },
  });
  if (r.status === 200) say(`replied to ${to}: "echo: ${text}" (${r.body.messages[0].id})`);
  else say(`reply to ${to} refused: ${r.status} ${JSON.stringify(r.body)}`);
}

async function main() {
  const secrets = state();
  let token;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://demo');
    if (req.method === 'GET') {
      const ok = u.searchParams.get('hub.verify_token') === secrets.verify_token;
      return void res.writeHead(ok ? 200 : 403).end(ok ? (u.searchParams.get('hub.challenge') ?? '') : '');
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      if (!signatureOk(raw, req.headers['x-hub-signature-256'], secrets.app_secret)) {
        say('refused a webhook POST with a bad signature');
        return void res.writeHead(401).end();
      }
      res.writeHead(200).end();
      const body = JSON.parse(raw.toString('utf8'));
      for (const entry of body.entry ?? [])
        for (const { value } of entry.changes ?? []) {
          const names = new Map((value.contacts ?? []).map((c) => [c.wa_id, c.profile?.name]));
          for (const m of value.messages ?? []) {
            const text = m.type === 'text' ? m.text.body : `<${m.type}>`;
            say(`webhook: message ${m.id} from ${m.from} (${names.get(m.from) || 'no name'}): "${text}"`);
            if (token && m.type === 'text') void echo(token, m.from, text);
          }
          for (const s of value.statuses ?? []) say(`webhook: status ${s.status} for ${s.id}`);
        }
    });
  });
  await new Promise((r) => server.listen(PORT, '127.0.0.1', r));
  token = await setUp(secrets, `http://127.0.0.1:${PORT}/webhook`);
  say(`ready: business "Demo Echo Shop", phone_number_id ${DEMO_NUMBER}, webhook on port ${PORT}`);
  say(`register a device and write to ${DEMO_NUMBER} (docs/demo.md); gateway: ${env.DEMO_GATEWAY_URL}`);
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  say(`cannot start: ${err.message}`);
  process.exit(1);
});
