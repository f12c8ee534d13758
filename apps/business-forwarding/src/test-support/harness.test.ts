/**
 * Test support for business-forwarding (not a test file itself: Jest only runs *.int.test.ts and
 * *.spec.ts). Starts the real service in-process on a throwaway Postgres database and NATS subject
 * root, stands in for the other services by publishing their events on real NATS, and runs a real
 * webhook receiver that verifies X-Hub-Signature-256 over the raw bytes it received.
 */
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { Client } from 'pg';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { FakeClock, encodeJson, migrate, startService, type Clock } from '@relay/platform';
import { EVENTS, eventSubject, type EventName, type EventPayload } from '@relay/protocol';
import {
  TEST_NATS_URL,
  createTestDatabase,
  waitFor,
  deleteStreams,
  serviceEnv,
  testSubjectRoot,
  type TestDatabase,
} from '@relay/testing';
import { businessForwardingService } from '../service';
import { businessForwardingDataSource } from '../data-source';
import type { RandomSource } from '../common/tokens';

export const OPERATOR_TOKEN = `op_${randomBytes(24).toString('hex')}`;
export const MASTER_KEY = `test:${randomBytes(32).toString('base64')}`;

/** A second replica on the same database, NATS root and clock (for cross-replica behaviour). */
export async function startReplica(h: Harness): Promise<{ url: string; close(): Promise<void> }> {
  const app = await startService(businessForwardingService({ clock: h.clock as Clock }), h.env);
  return { url: (await app.getUrl()).replace('[::1]', '127.0.0.1'), close: () => app.close() };
}

export interface Harness {
  app: NestExpressApplication;
  url: string;
  db: TestDatabase;
  root: string;
  nc: NatsConnection;
  clock: FakeClock;
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** Env of the service under test; spawned processes get the same. */
export function bfEnv(db: TestDatabase, root: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return serviceEnv(db, root, {
    OPERATOR_TOKEN,
    MASTER_KEY,
    WEBHOOK_ALLOW_HTTP: 'true',
    WEBHOOK_POLL_MS: '50',
    ...extra,
  });
}

export async function prepareDatabase(label: string): Promise<TestDatabase> {
  const db = await createTestDatabase(label);
  const ds = businessForwardingDataSource(db.url, 2);
  await migrate(ds);
  await ds.destroy();
  return db;
}

export async function startHarness(
  opts: { env?: Record<string, string>; random?: RandomSource; clock?: FakeClock } = {},
): Promise<Harness> {
  const db = await prepareDatabase('bf');
  const root = testSubjectRoot('bf');
  const clock = opts.clock ?? new FakeClock(new Date());
  const env = bfEnv(db, root, opts.env);
  const app = await startService(
    businessForwardingService({ clock: clock as Clock, random: opts.random }),
    env,
  );
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  const nc = await connect({ servers: TEST_NATS_URL });
  return {
    app,
    url,
    db,
    root,
    nc,
    clock,
    env,
    close: async () => {
      await app.close();
      await nc.close();
      await deleteStreams(root);
      await db.drop();
    },
  };
}

/** Publishes an event as its producer would (crypto, gateway, storage stand-ins), schema-checked. */
export async function publishAs<N extends EventName>(
  nc: NatsConnection,
  root: string,
  name: N,
  tokens: Record<string, string>,
  payload: EventPayload<N>,
  msgId?: string,
): Promise<void> {
  const data = EVENTS[name].schema.parse(payload);
  await nc.jetstream().publish(eventSubject(root, name, tokens as never), encodeJson(data), { msgID: msgId });
}

export interface HttpResult {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
  body: any;
}

export async function call(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['Content-Type'] ??= 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // non-JSON bodies are returned as text so the test can say what came back
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

export const admin = (h: { url: string }, method: string, path: string, body?: unknown) =>
  call(h.url, method, `/admin/v1${path}`, { token: OPERATOR_TOKEN, body });

export interface Tenant {
  waba: string;
  pnid: string;
  display: string;
  token: string;
  appSecret: string;
}

let counter = 0;
/** A business with one registered number and a token, set up through the operator and Cloud APIs. */
export async function createTenant(h: { url: string }, extra: { register?: boolean } = {}): Promise<Tenant> {
  counter++;
  const waba = `${100000 + counter}${randomBytes(2).readUInt16BE()}`;
  const pnid = `${200000 + counter}${randomBytes(2).readUInt16BE()}`;
  const display = `+1 555 01${String(counter).padStart(2, '0')}`;
  const b = await admin(h, 'POST', '/businesses', { waba_id: waba, name: `Biz ${counter}` });
  if (b.status !== 201) throw new Error(`create business: ${JSON.stringify(b.body)}`);
  const n = await admin(h, 'POST', `/businesses/${waba}/phone_numbers`, {
    phone_number_id: pnid,
    display_phone_number: display,
  });
  if (n.status !== 201) throw new Error(`add number: ${JSON.stringify(n.body)}`);
  const t = await admin(h, 'POST', `/businesses/${waba}/tokens`, { label: 'test' });
  const tenant = {
    waba,
    pnid,
    display,
    token: t.body.access_token as string,
    appSecret: b.body.app_secret as string,
  };
  if (extra.register !== false) {
    const r = await call(h.url, 'POST', `/v23.0/${pnid}/register`, {
      token: tenant.token,
      body: { messaging_product: 'whatsapp', pin: '123456' },
    });
    if (r.status !== 200) throw new Error(`register: ${JSON.stringify(r.body)}`);
  }
  return tenant;
}

export const wamid = () => `wamid.${randomBytes(18).toString('base64url')}`;
export const envelopeId = () => randomBytes(9).toString('base64url');

/** Stands in for crypto: a decrypted user message for the business. */
export function inbound(
  pnid: string,
  waId: string,
  body: string,
  at: Date,
  extra: Partial<EventPayload<'inbound.message'>> = {},
): EventPayload<'inbound.message'> {
  return {
    wamid: wamid(),
    envelope_id: envelopeId(),
    phone_number_id: pnid,
    from: { wa_id: waId, device_id: 1 },
    profile_name: 'Ana',
    identity_key_hash: 'ab'.repeat(32),
    identity_changed: false,
    sent_at: at.getTime(),
    received_at: at.toISOString(),
    content: { type: 'text', text: { body } },
    ...extra,
  };
}

/**
 * Waits until the service recorded the user's message (its webhook event and, in the same
 * transaction, the 24-hour window), read from the service's own table.
 */
export async function waitForInbound(h: { db: TestDatabase }, wamid: string): Promise<void> {
  const pg = new Client({ connectionString: h.db.url });
  await pg.connect();
  try {
    await waitFor(async () => {
      const r = await pg.query(`SELECT 1 FROM business_forwarding.webhook_events WHERE dedupe_key = $1`, [
        `m:${wamid}`,
      ]);
      return r.rowCount === 1;
    });
  } finally {
    await pg.end();
  }
}

export { WebhookReceiver, valueOf, valuesOf, type Received } from './webhook-receiver.test';
