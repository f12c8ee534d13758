/**
 * Webhook delivery end to end: real HTTP receivers verifying X-Hub-Signature-256 over the raw bytes,
 * real NATS and Postgres. crypto, gateway and storage are not running: the test stands in for them by
 * publishing 'inbound.message', 'status.update' and 'outbound.failure' on real NATS. Time is a
 * FakeClock injected into the service, so days of backoff pass without waiting.
 */
import type { Subscription } from 'nats';
import { WebhookEnvelope } from '@relay/protocol';
import { waitFor } from '@relay/testing';
import {
  admin,
  call,
  createTenant,
  inbound,
  publishAs,
  startHarness,
  valueOf,
  valuesOf,
  waitForInbound,
  WebhookReceiver,
  type Harness,
  type Received,
  type Tenant,
} from '../test-support/harness.test';
import { MetaOpenApi } from '../test-support/meta-openapi.test';
import { Client } from 'pg';
import { WebhookDispatcher } from './dispatcher.service';
import { HousekeepingService } from './housekeeping.service';

const DAY = 24 * 3600_000;
let h: Harness;
let spec: MetaOpenApi;
const receivers: WebhookReceiver[] = [];

async function subscribed(
  t: Tenant,
  opts: { max_concurrency?: number; timeout_ms?: number; max_events_per_post?: number } = {},
) {
  const r = new WebhookReceiver(t.appSecret);
  receivers.push(r);
  await r.start();
  const res = await admin(h, 'PUT', `/businesses/${t.waba}/webhook`, {
    callback_url: r.url,
    verify_token: r.verifyToken,
    ...opts,
  });
  expect(res.status).toBe(200);
  return r;
}

async function userSays(t: Tenant, waId: string, body: string) {
  const m = inbound(t.pnid, waId, body, h.clock.now());
  await publishAs(h.nc, h.root, 'inbound.message', { phone_number_id: t.pnid }, m, m.envelope_id);
  return m;
}

async function businessSends(t: Tenant, waId: string, body: string, opaque?: string): Promise<string> {
  const res = await call(h.url, 'POST', `/v23.0/${t.pnid}/messages`, {
    token: t.token,
    body: { messaging_product: 'whatsapp', to: waId, text: { body }, biz_opaque_callback_data: opaque },
  });
  expect(res.status).toBe(200);
  return res.body.messages[0].id as string;
}

/** Stands in for gateway (delivered, read) and storage (sent). */
async function status(t: Tenant, wamid: string, waId: string, s: 'sent' | 'delivered' | 'read', device = 1) {
  await publishAs(
    h.nc,
    h.root,
    'status.update',
    { phone_number_id: t.pnid },
    {
      wamid,
      phone_number_id: t.pnid,
      recipient_id: waId,
      device_id: device,
      status: s,
      timestamp: h.clock.now().toISOString(),
    },
  );
}

const statusesOf = (r: WebhookReceiver, wamid: string) =>
  r.accepted
    .flatMap(valuesOf)
    .flatMap((v) => (v.statuses ?? []).filter((s: { id: string }) => s.id === wamid));
const textsOf = (r: WebhookReceiver) =>
  r.accepted
    .flatMap(valuesOf)
    .flatMap((v) => (v.messages ?? []).filter((m: { type: string }) => m.type === 'text'))
    .map((m: { text: { body: string } }) => m.text.body);

/** Moves time forward and lets the dispatcher look at once. */
function advance(ms: number) {
  h.clock.advance(ms);
  h.app.get(WebhookDispatcher).wake();
}

beforeAll(async () => {
  h = await startHarness({
    random: () => 1, // jitter pinned to its maximum: delays are exact in assertions
    env: { WEBHOOK_BACKOFF_BASE_MS: '1000', WEBHOOK_BACKOFF_MAX_MS: '3600000' },
  });
  spec = new MetaOpenApi();
});

afterAll(async () => {
  for (const r of receivers) await r.stop();
  await h?.close();
});

describe('webhook delivery', () => {
  it('refuses a subscription whose endpoint fails the verification handshake', async () => {
    const t = await createTenant(h);
    const r = new WebhookReceiver(t.appSecret, 'other-token');
    receivers.push(r);
    await r.start();
    const res = await admin(h, 'PUT', `/businesses/${t.waba}/webhook`, {
      callback_url: r.url,
      verify_token: 'wrong',
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('verification_failed');
  });

  it('signs ASCII-only bodies: non-ASCII text arrives escaped and verifies; NATS integrators get the same body', async () => {
    const t = await createTenant(h);
    const r = await subscribed(t);
    const patched = await admin(h, 'PATCH', `/phone_numbers/${t.pnid}`, { nats_delivery: true });
    expect(patched.body).toMatchObject({ nats_delivery: true });
    const integrator: unknown[] = [];
    const sub: Subscription = h.nc.subscribe(`${h.root}.v1.integrator.webhook.${t.pnid}`);
    void (async () => {
      for await (const m of sub) integrator.push(JSON.parse(new TextDecoder().decode(m.data)));
    })();
    const text = 'Grüße, äöå — 你好 👋 @home <b>&';
    const m = await userSays(t, '4915122220001', text);
    await waitFor(() => r.received.length === 1);
    const got = r.received[0];
    expect(got.signatureValid).toBe(true);
    expect(got.contentLength).toBe(got.raw.length);
    expect([...got.raw].every((byte) => byte < 0x80)).toBe(true);
    expect(got.raw.toString('ascii')).toContain('Gr\\u00fc\\u00dfe, \\u00e4\\u00f6\\u00e5');
    expect(got.raw.toString('ascii')).toContain('\\ud83d\\udc4b');
    expect(WebhookEnvelope.safeParse(got.json).success).toBe(true);
    expect(got.json).toEqual({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: t.waba,
          changes: [
            {
              field: 'messages',
              value: {
                messaging_product: 'whatsapp',
                metadata: { display_phone_number: t.display.replace(/\D/g, ''), phone_number_id: t.pnid },
                contacts: [{ profile: { name: 'Ana' }, wa_id: '4915122220001' }],
                messages: [
                  {
                    from: '4915122220001',
                    id: m.wamid,
                    timestamp: String(Math.floor(new Date(m.received_at).getTime() / 1000)),
                    type: 'text',
                    text: { body: text },
                  },
                ],
              },
            },
          ],
        },
      ],
    });
    // Same keys as the text-message example of Meta's spec (its IncomingMessage schema reuses the send
    // schema and cannot validate a real webhook, so the example is the reference here).
    const example = spec.componentExample([
      'paths',
      '/whatsapp/webhooks',
      'post',
      'requestBody',
      'content',
      'application/json',
      'examples',
      'Text Message',
      'value',
    ]) as Received['json'];
    const keys = (o: unknown): unknown =>
      o && typeof o === 'object'
        ? Object.fromEntries(
            Object.entries(o)
              .sort()
              .map(([k, v]) => [k, Array.isArray(v) ? v.map(keys) : keys(v)]),
          )
        : typeof o;
    expect(keys(got.json)).toEqual(keys(example));
    await waitFor(() => integrator.length === 1);
    expect(integrator[0]).toEqual(got.json);
    sub.unsubscribe();
    // The user can now be answered: the inbound message opened the 24-hour window.
    await waitForInbound(h, m.wamid);
  });

  it('sends statuses sent, delivered, read once each and in order, echoing biz_opaque_callback_data', async () => {
    const t = await createTenant(h);
    const r = await subscribed(t);
    const m = await userSays(t, '4915122220002', 'hi');
    await waitForInbound(h, m.wamid);
    const id = await businessSends(t, '4915122220002', 'hello', 'ref-42');
    // Delivered overtakes sent; a second device reports delivered after read.
    await status(t, id, '4915122220002', 'delivered');
    await status(t, id, '4915122220002', 'sent');
    await status(t, id, '4915122220002', 'read');
    await status(t, id, '4915122220002', 'delivered', 2);
    await waitFor(() => statusesOf(r, id).length === 3);
    await new Promise((res) => setTimeout(res, 300));
    expect(statusesOf(r, id).map((s: { status: string }) => s.status)).toEqual(['sent', 'delivered', 'read']);
    for (const s of statusesOf(r, id)) {
      expect(s).toMatchObject({ recipient_id: '4915122220002', biz_opaque_callback_data: 'ref-42' });
    }
    for (const got of r.accepted.filter((x) => valueOf(x).statuses)) {
      expect(got.signatureValid).toBe(true);
      expect(spec.componentErrors('WebhookPayload', got.json)).toEqual([]);
    }
  });

  it('turns an outbound.failure (no devices) into a failed status with 131026', async () => {
    const t = await createTenant(h);
    const r = await subscribed(t);
    const m = await userSays(t, '4915122220003', 'hi');
    await waitForInbound(h, m.wamid);
    const id = await businessSends(t, '4915122220003', 'hello');
    await publishAs(
      h.nc,
      h.root,
      'outbound.failure',
      { phone_number_id: t.pnid },
      {
        wamid: id,
        phone_number_id: t.pnid,
        to: '4915122220003',
        reason: 'no_devices',
        detail: 'no devices',
        failed_at: h.clock.now().toISOString(),
      },
    );
    await waitFor(() => statusesOf(r, id).length === 1);
    const [failed] = statusesOf(r, id);
    expect(failed).toMatchObject({
      status: 'failed',
      errors: [{ code: 131026, title: 'Message undeliverable' }],
    });
    expect(spec.componentErrors('WebhookPayload', r.accepted[r.accepted.length - 1].json)).toEqual([]);
  });

  it('holds everything while the receiver is down, then delivers every event: messages in order, statuses in order', async () => {
    const t = await createTenant(h);
    const r = await subscribed(t);
    const first = await userSays(t, '4915122220004', 'open');
    await waitFor(() => r.received.length === 1);
    await waitForInbound(h, first.wamid);
    const sentIds = [
      await businessSends(t, '4915122220004', 'a'),
      await businessSends(t, '4915122220004', 'b'),
    ];

    r.mode = 'down';
    for (let i = 0; i < 6; i++) await userSays(t, '4915122220004', `m${i}`);
    for (const id of sentIds) {
      await status(t, id, '4915122220004', 'sent');
      await status(t, id, '4915122220004', 'delivered');
      await status(t, id, '4915122220004', 'read');
    }
    // A few rounds of failures with backoff (1 s, 2 s, 4 s ...), one of them with the port closed.
    await waitFor(
      async () => (await admin(h, 'GET', `/businesses/${t.waba}/webhook/attempts`)).body.data.length >= 3,
    );
    const port = Number(new URL(r.url).port);
    await r.stop();
    for (let i = 0; i < 4; i++) {
      advance(20_000);
      await new Promise((res) => setTimeout(res, 100));
    }
    const log = (await admin(h, 'GET', `/businesses/${t.waba}/webhook/attempts?limit=1000`)).body.data;
    expect(log.some((a: { status_code: number }) => a.status_code === 503)).toBe(true);
    expect(
      log.some(
        (a: { status_code: number | null; error: string }) =>
          a.status_code === null && /ECONNREFUSED/.test(a.error),
      ),
    ).toBe(true);
    // Order is kept by holding later events of a number behind the first undelivered one.
    const messageAttempts = log.filter(
      (a: { event_key: string; error: string | null }) => a.event_key?.startsWith('m:') && a.error !== null,
    );
    expect(new Set(messageAttempts.map((a: { event_key: string }) => a.event_key)).size).toBe(1);
    expect(textsOf(r)).toEqual(['open']);

    await r.start(port);
    r.mode = 'up';
    advance(3600_000);
    await waitFor(
      () => textsOf(r).length === 7 && sentIds.every((id) => statusesOf(r, id).length === 3),
      15_000,
    );
    expect(textsOf(r)).toEqual(['open', 'm0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    for (const id of sentIds) {
      expect(statusesOf(r, id).map((s: { status: string }) => s.status)).toEqual([
        'sent',
        'delivered',
        'read',
      ]);
    }
    expect(r.received.every((x) => x.signatureValid)).toBe(true);
    const ok = (await admin(h, 'GET', `/businesses/${t.waba}/webhook/attempts?limit=5`)).body.data;
    expect(ok[0]).toMatchObject({ status_code: 200, error: null });
    expect(typeof ok[0].latency_ms).toBe('number');
  });

  it('publishes the NATS copy only for numbers with nats_delivery on', async () => {
    const t = await createTenant(h);
    const r = await subscribed(t);
    const copies: string[] = [];
    const sub: Subscription = h.nc.subscribe(`${h.root}.v1.integrator.webhook.${t.pnid}`);
    void (async () => {
      for await (const m of sub) copies.push(new TextDecoder().decode(m.data));
    })();
    expect((await admin(h, 'GET', `/phone_numbers/${t.pnid}`)).body).toMatchObject({ nats_delivery: false });
    await userSays(t, '4915122220010', 'webhook only');
    await waitFor(() => textsOf(r).includes('webhook only'));
    await admin(h, 'PATCH', `/phone_numbers/${t.pnid}`, { nats_delivery: true });
    await userSays(t, '4915122220010', 'both');
    await waitFor(() => textsOf(r).includes('both') && copies.length === 1);
    await new Promise((res) => setTimeout(res, 200));
    sub.unsubscribe();
    expect(copies).toHaveLength(1);
    expect(copies[0]).toContain('"both"');
    const bad = await admin(h, 'PATCH', `/phone_numbers/${t.pnid}`, { nats_delivery: 'yes' });
    expect(bad.status).toBe(400);
  });

  it('joins events waiting for one endpoint into one signed POST, at most max_events_per_post, in order', async () => {
    const t = await createTenant(h);
    const r = await subscribed(t, { max_events_per_post: 3 });
    r.mode = 'down';
    for (let i = 0; i < 7; i++) await userSays(t, '4915122220009', `b${i}`);
    await waitFor(
      async () => (await admin(h, 'GET', `/businesses/${t.waba}/webhook/attempts`)).body.data.length >= 1,
    );
    r.mode = 'up';
    advance(3600_000);
    await waitFor(() => textsOf(r).length === 7, 15_000);
    expect(textsOf(r)).toEqual(['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6']);
    const sizes = r.accepted.map((x) => valuesOf(x).length);
    expect(Math.max(...sizes)).toBe(3);
    expect(r.accepted.length).toBeLessThan(7);
    expect(r.accepted.every((x) => x.signatureValid)).toBe(true);
    // Each event is recorded as delivered once, with the POST's outcome.
    const log = (await admin(h, 'GET', `/businesses/${t.waba}/webhook/attempts?limit=100`)).body.data;
    const ok = log.filter((a: { status_code: number | null }) => a.status_code === 200);
    expect(new Set(ok.map((a: { event_key: string }) => a.event_key)).size).toBe(7);
    expect(ok).toHaveLength(7);
    expect((await admin(h, 'GET', `/businesses/${t.waba}/webhook`)).body).toMatchObject({
      max_events_per_post: 3,
      queue: { delivered: 7 },
    });
  });

  it('dead-letters after the retry window and replays on request', async () => {
    const t = await createTenant(h);
    const r = await subscribed(t);
    r.mode = 'down';
    await userSays(t, '4915122220005', 'lost?');
    await waitFor(
      async () => (await admin(h, 'GET', `/businesses/${t.waba}/webhook/attempts`)).body.data.length >= 1,
    );
    advance(7 * DAY + 3600_000);
    await waitFor(
      async () =>
        (await admin(h, 'GET', `/businesses/${t.waba}/webhook/dead_letters`)).body.data.length === 1,
    );
    const dead = (await admin(h, 'GET', `/businesses/${t.waba}/webhook/dead_letters`)).body.data[0];
    expect(dead).toMatchObject({ kind: 'message', phone_number_id: t.pnid });
    expect((await admin(h, 'GET', `/businesses/${t.waba}/webhook`)).body.queue).toMatchObject({ dead: 1 });
    r.mode = 'up';
    const replay = await admin(h, 'POST', `/businesses/${t.waba}/webhook/dead_letters/replay`, {
      ids: [dead.id],
    });
    expect(replay.body).toEqual({ replayed: 1 });
    await waitFor(() => textsOf(r).includes('lost?'));
    expect((await admin(h, 'GET', `/businesses/${t.waba}/webhook/dead_letters`)).body.data).toEqual([]);
  });

  it('keeps at most max_concurrency requests in flight per endpoint and times out a hanging endpoint', async () => {
    const t = await createTenant(h);
    // One event per POST, so the eight statuses need eight requests and the limit shows.
    const r = await subscribed(t, { max_concurrency: 2, timeout_ms: 300, max_events_per_post: 1 });
    const m = await userSays(t, '4915122220006', 'hi');
    await waitFor(() => r.received.length === 1);
    await waitForInbound(h, m.wamid);
    await admin(h, 'PATCH', `/phone_numbers/${t.pnid}`, { pair_burst: 100 });
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push(await businessSends(t, '4915122220006', `n${i}`));
    r.delayMs = 150;
    r.maxInFlight = 0;
    for (const id of ids) await status(t, id, '4915122220006', 'sent');
    await waitFor(() => ids.every((id) => statusesOf(r, id).length === 1), 15_000);
    expect(r.maxInFlight).toBe(2);

    r.delayMs = 0;
    r.mode = 'hang';
    await userSays(t, '4915122220006', 'slow');
    await waitFor(async () =>
      (await admin(h, 'GET', `/businesses/${t.waba}/webhook/attempts`)).body.data.some(
        (a: { error: string | null }) => /timeout/.test(a.error ?? ''),
      ),
    );
    r.mode = 'up';
    advance(60_000);
    await waitFor(() => textsOf(r).includes('slow'));
  });

  it('adds identity_key_hash only with the identity check, replies carry context, blocked users do not get through', async () => {
    const t = await createTenant(h);
    const r = await subscribed(t);
    const first = await userSays(t, '4915122220008', 'one');
    await waitFor(() => textsOf(r).length === 1);
    expect(valueOf(r.accepted[0]).contacts[0].identity_key_hash).toBeUndefined();
    const on = await call(h.url, 'POST', `/v23.0/${t.pnid}/settings`, {
      token: t.token,
      body: { user_identity_change: { enable_identity_key_check: true } },
    });
    expect(on.status).toBe(200);
    const reply = inbound(t.pnid, '4915122220008', 'two', h.clock.now(), {
      content: { type: 'text', text: { body: 'two' }, context: { message_id: first.wamid } },
    });
    await publishAs(h.nc, h.root, 'inbound.message', { phone_number_id: t.pnid }, reply, reply.envelope_id);
    await waitFor(() => textsOf(r).length === 2);
    const v = valueOf(r.accepted[1]);
    expect(v.contacts[0].identity_key_hash).toBe('ab'.repeat(32));
    expect(v.messages[0].context).toEqual({ from: t.display.replace(/\D/g, ''), id: first.wamid });

    const blocked = await call(h.url, 'POST', `/v23.0/${t.pnid}/block_users`, {
      token: t.token,
      body: { messaging_product: 'whatsapp', block_users: [{ user: '4915122220008' }] },
    });
    expect(blocked.status).toBe(200);
    await userSays(t, '4915122220008', 'three');
    await userSays(t, '4915122220009', 'from someone else');
    await waitFor(() => textsOf(r).includes('from someone else'));
    expect(textsOf(r)).toEqual(['one', 'two', 'from someone else']);
  });

  it('reports content it cannot carry as an unsupported message (131051), and nothing for undecryptable envelopes', async () => {
    const t = await createTenant(h);
    const r = await subscribed(t);
    const failure = (reason: 'invalid_plaintext' | 'undecryptable', id: string) =>
      publishAs(
        h.nc,
        h.root,
        'inbound.failure',
        { phone_number_id: t.pnid },
        {
          envelope_id: id,
          phone_number_id: t.pnid,
          from: { wa_id: '4915122220010', device_id: 1 },
          reason,
          detail: 'stand-in for crypto',
          failed_at: h.clock.now().toISOString(),
        },
      );
    await failure('undecryptable', 'envAAAAAAAA1');
    await failure('invalid_plaintext', 'envAAAAAAAA2');
    await userSays(t, '4915122220010', 'after');
    // Failures and messages come from two consumers: wait for both, then make sure nothing else follows.
    await waitFor(() => textsOf(r).includes('after') && r.accepted.length === 2);
    await new Promise((res) => setTimeout(res, 300));
    expect(r.accepted).toHaveLength(2);
    const unsupported = r.accepted.find((x) => valueOf(x).messages[0].type === 'unsupported');
    expect(unsupported).toBeDefined();
    const v = valueOf(unsupported as Received);
    expect(v.messages[0]).toMatchObject({
      from: '4915122220010',
      id: 'wamid.envAAAAAAAA2',
      type: 'unsupported',
      errors: [{ code: 131051, title: 'Message type unknown' }],
    });
    expect(WebhookEnvelope.safeParse(unsupported?.json).success).toBe(true);
  });

  it('dead-letters events nobody could deliver and purges everything past the retention limit', async () => {
    const t = await createTenant(h); // no webhook subscription at all
    await userSays(t, '4915122220007', 'nobody listens');
    const pg = new Client({ connectionString: h.db.url });
    await pg.connect();
    const count = async (state?: string) =>
      (
        await pg.query(
          `SELECT count(*)::int AS n FROM business_forwarding.webhook_events WHERE phone_number_id = $1${state ? ' AND state = $2' : ''}`,
          state ? [t.pnid, state] : [t.pnid],
        )
      ).rows[0].n as number;
    try {
      await waitFor(async () => (await count('pending')) === 1);
      const housekeeping = h.app.get(HousekeepingService);
      h.clock.advance(7 * DAY + 60_000);
      await waitFor(async () => (await housekeeping.run(), (await count('dead')) === 1));
      h.clock.advance(30 * DAY);
      await housekeeping.run();
      expect(await count()).toBe(0);
      // Every earlier test's events are past the 30-day limit too (a delivery finishing meanwhile may
      // still be recording its outcome, hence the retry).
      await waitFor(async () => {
        await housekeeping.run();
        const all = await pg.query(`SELECT count(*)::int AS n FROM business_forwarding.webhook_events`);
        return all.rows[0].n === 0;
      });
    } finally {
      await pg.end();
    }
  });
});
