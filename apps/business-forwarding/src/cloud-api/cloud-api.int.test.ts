/**
 * The Cloud API surface over real HTTP, with real NATS and Postgres. crypto and gateway are not running:
 * this test stands in for them by publishing their events ('inbound.message', 'business.abuse_report',
 * 'business.erase_completed') on real NATS, and reads 'outbound.request' / lifecycle events off NATS.
 * Responses are validated against the response schemas of Meta's OpenAPI document.
 */
import { Client } from 'pg';
import type { Subscription } from 'nats';
import { ensureStreams } from '@relay/platform';
import { OutboundRequest, streamName, type EventPayload } from '@relay/protocol';
import { waitFor } from '@relay/testing';
import {
  OPERATOR_TOKEN,
  admin,
  call,
  createTenant,
  inbound,
  publishAs,
  startHarness,
  type Harness,
  type Tenant,
  waitForInbound,
} from '../test-support/harness.test';
import { MetaOpenApi } from '../test-support/meta-openapi.test';

const MESSAGES = '/{Version}/{Phone-Number-ID}/messages';
const NUMBER = '/{Version}/{Phone-Number-ID}';
const USER = '4915112345678';
const DAY = 24 * 3600_000;

let h: Harness;
let spec: MetaOpenApi;
let a: Tenant;
let b: Tenant;
const published: { subject: string; data: Record<string, unknown> }[] = [];
let sub: Subscription;

const text = (to: string, body = 'hello', extra: Record<string, unknown> = {}) => ({
  messaging_product: 'whatsapp',
  to,
  type: 'text',
  text: { body },
  ...extra,
});
const send = (t: Tenant, body: unknown, version = 'v23.0') =>
  call(h.url, 'POST', `/${version}/${t.pnid}/messages`, { token: t.token, body });
const outboundFor = (pnid: string) => published.filter((p) => p.subject.endsWith(`outbound.request.${pnid}`));

/** The user writes to the business (stand-in for crypto), opening the 24-hour window. */
async function userWrites(t: Tenant, waId = USER, body = 'hi'): Promise<EventPayload<'inbound.message'>> {
  const m = inbound(t.pnid, waId, body, h.clock.now());
  await publishAs(h.nc, h.root, 'inbound.message', { phone_number_id: t.pnid }, m, m.envelope_id);
  await waitForInbound(h, m.wamid);
  return m;
}

function expectError(
  res: { status: number; body: { error?: { code?: number } } },
  http: number,
  code: number,
) {
  expect({ status: res.status, code: res.body.error?.code }).toEqual({ status: http, code });
  expect(spec.componentErrors('GraphAPIError', res.body)).toEqual([]);
  expect(res.body.error).toMatchObject({
    type: 'OAuthException',
    error_data: { messaging_product: 'whatsapp' },
  });
  expect(typeof (res.body.error as { fbtrace_id?: string }).fbtrace_id).toBe('string');
}

beforeAll(async () => {
  h = await startHarness({
    env: { QUALITY_YELLOW_REPORTS: '1', QUALITY_RED_REPORTS: '2', QUALITY_BLOCK_REPORTS: '3' },
  });
  spec = new MetaOpenApi();
  sub = h.nc.subscribe(`${h.root}.v1.>`);
  void (async () => {
    for await (const m of sub) {
      try {
        published.push({ subject: m.subject, data: JSON.parse(new TextDecoder().decode(m.data)) });
      } catch {
        // not JSON: not ours
      }
    }
  })();
  a = await createTenant(h);
  b = await createTenant(h);
});

afterAll(async () => {
  sub?.unsubscribe();
  await h?.close();
});

describe('POST /{version}/{phone-number-id}/messages', () => {
  it('keeps idle client connections open 65 s by default, longer than load balancers keep theirs', () => {
    expect(h.app.getHttpServer().keepAliveTimeout).toBe(65_000);
  });

  it('sends text under another version prefix with the access_token query form, answering only after JetStream has it', async () => {
    await userWrites(a);
    const res = await call(h.url, 'POST', `/v19.0/${a.pnid}/messages?access_token=${a.token}`, {
      body: text(`+49 151 1234-5678`, 'Grüße 👋', {
        biz_opaque_callback_data: 'order-7',
        preview_url: undefined,
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(spec.responseErrors(MESSAGES, 'post', 200, res.body)).toEqual([]);
    expect(res.body).toEqual({
      messaging_product: 'whatsapp',
      contacts: [{ input: '+49 151 1234-5678', wa_id: USER }],
      messages: [{ id: expect.stringMatching(/^wamid\.[A-Za-z0-9_-]{32}$/) }],
    });
    const id = res.body.messages[0].id as string;
    // Durable before answered: the stream already holds it under msgId = wamid.
    const jsm = await h.nc.jetstreamManager();
    const stored = await jsm.streams.getMessage(streamName(h.root, 'OUTBOUND'), {
      last_by_subj: `${h.root}.v1.outbound.request.${a.pnid}`,
    });
    expect(stored.header.get('Nats-Msg-Id')).toBe(id);
    expect(stored.json()).toMatchObject({
      wamid: id,
      to: USER,
      content: { type: 'text', text: { body: 'Grüße 👋' } },
      biz_opaque_callback_data: 'order-7',
    });
  });

  it('accepts the fields form-encoded, as Graph API clients send them (JSON-valued fields decoded)', async () => {
    await userWrites(a);
    const postForm = (form: URLSearchParams) =>
      call(h.url, 'POST', `/v23.0/${a.pnid}/messages`, {
        token: a.token,
        raw: form.toString(),
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      });
    const form = new URLSearchParams({
      messaging_product: 'whatsapp',
      to: USER,
      type: 'text',
      text: JSON.stringify({ body: 'sent as a form', preview_url: false }),
    });
    const res = await postForm(form);
    expect(res.status).toBe(200);
    const id = res.body.messages[0].id as string;
    const jsm = await h.nc.jetstreamManager();
    const stored = await jsm.streams.getMessage(streamName(h.root, 'OUTBOUND'), {
      last_by_subj: `${h.root}.v1.outbound.request.${a.pnid}`,
    });
    expect(stored.json()).toMatchObject({
      wamid: id,
      content: { type: 'text', text: { body: 'sent as a form' } },
    });
    // A field that is neither a string the endpoint takes nor valid JSON is a validation error, and so
    // are more fields than any endpoint has.
    form.set('text', '{"body": ');
    const many = new URLSearchParams(Array.from({ length: 101 }, (_, i): [string, string] => [`f${i}`, 'x']));
    for (const refused of [await postForm(form), await postForm(many)]) {
      expect(refused.status).toBe(400);
      expect(refused.body.error.code).toBe(100);
    }
  });

  it('sends replies (context) and reactions', async () => {
    const m = await userWrites(a);
    const reply = await send(a, text(USER, 'about that', { context: { message_id: m.wamid } }));
    expect(reply.status).toBe(200);
    const react = await send(a, {
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: USER,
      type: 'reaction',
      reaction: { message_id: m.wamid, emoji: '👍' },
    });
    expect(react.status).toBe(200);
    expect(spec.responseErrors(MESSAGES, 'post', 200, react.body)).toEqual([]);
    await waitFor(() => outboundFor(a.pnid).some((p) => p.data.wamid === react.body.messages[0].id));
    const contents = outboundFor(a.pnid).map((p) => p.data.content);
    expect(contents).toContainEqual({
      type: 'text',
      text: { body: 'about that' },
      context: { message_id: m.wamid },
    });
    expect(contents).toContainEqual({ type: 'reaction', reaction: { message_id: m.wamid, emoji: '👍' } });
  });

  it('marks a received message as read, with the typing indicator', async () => {
    const m = await userWrites(a);
    const res = await send(a, {
      messaging_product: 'whatsapp',
      status: 'read',
      message_id: m.wamid,
      typing_indicator: { type: 'text' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: true });
    // The receipt travels to the user's devices like a message (crypto encrypts it), addressed to the sender.
    const receiptFor = () =>
      outboundFor(a.pnid)
        .map((p) => OutboundRequest.parse(p.data))
        .find((r) => r.content.type === 'read_receipt' && r.content.read_receipt.message_id === m.wamid);
    const receipt = await waitFor(receiptFor);
    expect(receipt?.to).toBe(m.from.wa_id);
    expect(receipt?.content).toEqual({
      type: 'read_receipt',
      read_receipt: { message_id: m.wamid, typing_indicator: true },
    });
    const unknown = await send(a, {
      messaging_product: 'whatsapp',
      status: 'read',
      message_id: 'wamid.AAAAAAAAAAAAAAAA',
    });
    expectError(unknown, 400, 131009);
  });

  it('rejects another business token on this number and sends nothing', async () => {
    await userWrites(a);
    const before = outboundFor(a.pnid).length;
    const res = await call(h.url, 'POST', `/v23.0/${a.pnid}/messages`, { token: b.token, body: text(USER) });
    expectError(res, 403, 10);
    const get = await call(h.url, 'GET', `/v23.0/${a.pnid}`, { token: b.token });
    expectError(get, 403, 10);
    await new Promise((r) => setTimeout(r, 300));
    expect(outboundFor(a.pnid).length).toBe(before);
  });

  it('answers each authentication and validation error with Meta code and status', async () => {
    await userWrites(a);
    expectError(await call(h.url, 'POST', `/v23.0/${a.pnid}/messages`, { body: text(USER) }), 401, 0);
    expectError(
      await call(h.url, 'POST', `/v23.0/${a.pnid}/messages`, { token: 'nope', body: text(USER) }),
      401,
      190,
    );
    const short = await admin(h, 'POST', `/businesses/${a.waba}/tokens`, { expires_in_seconds: 60 });
    expect((await send({ ...a, token: short.body.access_token }, text(USER))).status).toBe(200);
    h.clock.advance(61_000);
    expectError(await send({ ...a, token: short.body.access_token }, text(USER)), 401, 190);
    const revoked = await admin(h, 'POST', `/businesses/${a.waba}/tokens`, {});
    expect((await admin(h, 'DELETE', `/businesses/${a.waba}/tokens/${revoked.body.id}`)).status).toBe(200);
    expectError(await send({ ...a, token: revoked.body.access_token }, text(USER)), 401, 190);

    expectError(
      await call(h.url, 'POST', `/v23.0/999999999/messages`, { token: a.token, body: text(USER) }),
      400,
      100,
    );
    expectError(
      await call(h.url, 'POST', `/latest/${a.pnid}/messages`, { token: a.token, body: text(USER) }),
      400,
      100,
    );
    expectError(
      await call(h.url, 'POST', `/v23.0/${a.pnid}/messages`, { token: a.token, raw: '{"to":' }),
      400,
      100,
    );
    expectError(await send(a, text(USER, 'x'.repeat(4097))), 400, 100);
    const huge = JSON.stringify(text(USER, 'x'.repeat(2 * 1024 * 1024)));
    expectError(
      await call(h.url, 'POST', `/v23.0/${a.pnid}/messages`, { token: a.token, raw: huge }),
      400,
      100,
    );
    expectError(
      await call(h.url, 'POST', `/v23.0/${a.pnid}/messages`, {
        token: a.token,
        raw: 'to=1',
        headers: { 'Content-Type': 'text/plain' },
      }),
      400,
      100,
    );
    expectError(await send(a, { ...text(USER), type: 'carrier_pigeon' }), 400, 100);
    expectError(await call(h.url, 'POST', `/v23.0/${a.pnid}/media`, { token: a.token, body: {} }), 400, 100);
    expectError(
      await send(a, { messaging_product: 'whatsapp', type: 'text', text: { body: 'x' } }),
      400,
      131008,
    );
    expectError(await send(a, { to: USER, type: 'text', text: { body: 'x' } }), 400, 131008);
    expectError(await send(a, { messaging_product: 'whatsapp', to: USER, type: 'text' }), 400, 131008);
    expectError(await send(a, text('not-a-number')), 400, 131009);
    expectError(await send(a, text(USER, 'x', { context: { message_id: 'nope' } })), 400, 131009);
    for (const type of ['image', 'template', 'interactive', 'location', 'contacts']) {
      expectError(await send(a, { messaging_product: 'whatsapp', to: USER, type, [type]: {} }), 400, 131051);
    }
    expect((await send(a, text(USER, 'x'.repeat(4096)))).status).toBe(200);
  });

  it('refuses sends outside the 24-hour window (131047)', async () => {
    const t = await createTenant(h);
    expectError(await send(t, text('4915100000001')), 400, 131047);
    await userWrites(t, '4915100000001');
    expect((await send(t, text('4915100000001'))).status).toBe(200);
    h.clock.advance(DAY + 60_000);
    expectError(await send(t, text('4915100000001')), 400, 131047);
  });

  it('enforces throughput per number (130429) and the pair rate limit (131056)', async () => {
    const t = await createTenant(h);
    const users = ['4915100000011', '4915100000012', '4915100000013', '4915100000014'];
    for (const u of users) await userWrites(t, u);
    // Limits are counted in Postgres: the probes of userWrites went into earlier windows.
    h.clock.advance(1000);
    expect(
      (await admin(h, 'PATCH', `/phone_numbers/${t.pnid}`, { throughput_mps: 2, pair_burst: 1 })).status,
    ).toBe(200);
    expect((await send(t, text(users[0]))).status).toBe(200);
    expect((await send(t, text(users[1]))).status).toBe(200);
    expectError(await send(t, text(users[2])), 400, 130429);
    h.clock.advance(1000);
    expect((await send(t, text(users[2]))).status).toBe(200);
    expectError(await send(t, text(users[2])), 400, 131056);
    h.clock.advance(1000);
    expect((await send(t, text(users[3]))).status).toBe(200); // other users are not affected
    h.clock.advance(6000); // one pair token back
    expect((await send(t, text(users[2]))).status).toBe(200);
  });

  it('refuses unregistered numbers (133010) and restricted businesses (368)', async () => {
    const t = await createTenant(h, { register: false });
    expectError(await send(t, text(USER)), 400, 133010);
    await userWrites(a);
    expect((await admin(h, 'PATCH', `/businesses/${a.waba}`, { status: 'restricted' })).status).toBe(200);
    expectError(await send(a, text(USER)), 403, 368);
    await admin(h, 'PATCH', `/businesses/${a.waba}`, { status: 'active' });
  });

  it('lets spam reports and blocks (from gateway) lower quality until sending stops (131048)', async () => {
    const t = await createTenant(h);
    await userWrites(t, '4915100000021');
    for (let i = 0; i < 3; i++) {
      await publishAs(
        h.nc,
        h.root,
        'business.abuse_report',
        { phone_number_id: t.pnid },
        {
          report_id: crypto.randomUUID(),
          phone_number_id: t.pnid,
          wa_id: `49151000001${i}0`,
          kind: i === 1 ? 'block' : 'spam_report',
          at: h.clock.now().toISOString(),
        },
      );
    }
    await waitFor(async () => (await admin(h, 'GET', `/phone_numbers/${t.pnid}`)).body.quality_score === 3);
    const info = await call(h.url, 'GET', `/v23.0/${t.pnid}`, { token: t.token });
    expect(info.body.quality_rating).toBe('RED');
    expectError(await send(t, text('4915100000021')), 400, 131048);
  });

  it('applies the messaging-limit tier of unique users per rolling 24 h (131048)', async () => {
    const t = await createTenant(h);
    await admin(h, 'PATCH', `/businesses/${t.waba}`, { messaging_limit: 1 });
    await userWrites(t, '4915100000031');
    await userWrites(t, '4915100000032');
    expect((await send(t, text('4915100000031'))).status).toBe(200);
    expectError(await send(t, text('4915100000032')), 400, 131048);
  });

  it('answers 131000 when the request cannot be made durable', async () => {
    await userWrites(a);
    const jsm = await h.nc.jetstreamManager();
    await jsm.streams.delete(streamName(h.root, 'OUTBOUND'));
    try {
      expectError(await send(a, text(USER)), 500, 131000);
    } finally {
      await ensureStreams(jsm, { root: h.root, retentionDays: 30 });
    }
  });
});

describe('phone number paths', () => {
  it('GET /{phone-number-id} matches the spec', async () => {
    const res = await call(h.url, 'GET', `/v23.0/${a.pnid}`, { token: a.token });
    expect(res.status).toBe(200);
    expect(spec.responseErrors(NUMBER, 'get', 200, res.body)).toEqual([]);
    expect(res.body).toMatchObject({ id: a.pnid, display_phone_number: a.display, quality_rating: 'GREEN' });
  });

  it('deregisters and registers with a region, announcing both on NATS', async () => {
    const t = await createTenant(h);
    const d = await call(h.url, 'POST', `/v23.0/${t.pnid}/deregister`, { token: t.token });
    expect(d.status).toBe(200);
    expect(spec.responseErrors(`${NUMBER}/deregister`, 'post', 200, d.body)).toEqual([]);
    await waitFor(() => published.some((p) => p.subject.endsWith(`business.number_deregistered.${t.pnid}`)));
    expectError(await call(h.url, 'POST', `/v23.0/${t.pnid}/deregister`, { token: t.token }), 400, 133010);
    const reg = (pin: unknown, region?: unknown) =>
      call(h.url, 'POST', `/v23.0/${t.pnid}/register`, {
        token: t.token,
        body: { messaging_product: 'whatsapp', pin, ...(region ? { data_localization_region: region } : {}) },
      });
    expectError(await reg('12'), 400, 100);
    expectError(await reg('123456', 'XX'), 400, 100);
    expectError(await reg('654321', 'DE'), 400, 133005);
    const r = await reg('123456', 'DE');
    expect(r.status).toBe(200);
    expect(spec.responseErrors(`${NUMBER}/register`, 'post', 200, r.body)).toEqual([]);
    await waitFor(() =>
      published.some(
        (p) =>
          p.subject.endsWith(`business.number_registered.${t.pnid}`) &&
          p.data.data_localization_region === 'DE',
      ),
    );
    const s = await call(h.url, 'GET', `/v23.0/${t.pnid}/settings`, { token: t.token });
    expect(spec.responseErrors(`${NUMBER}/settings`, 'get', 200, s.body)).toEqual([]);
    expect(s.body.storage_configuration).toEqual({
      status: 'in_country_storage_enabled',
      data_localization_region: 'DE',
    });
  });

  it('updates settings it maps (identity check; local storage only while deregistered)', async () => {
    const t = await createTenant(h);
    const ok = await call(h.url, 'POST', `/v23.0/${t.pnid}/settings`, {
      token: t.token,
      body: { user_identity_change: { enable_identity_key_check: true } },
    });
    expect(ok.status).toBe(200);
    expect(spec.responseErrors(`${NUMBER}/settings`, 'post', 200, ok.body)).toEqual([]);
    const storage = {
      storage_configuration: { status: 'IN_COUNTRY_STORAGE_ENABLED', data_localization_region: 'IN' },
    };
    expectError(
      await call(h.url, 'POST', `/v23.0/${t.pnid}/settings`, { token: t.token, body: storage }),
      400,
      100,
    );
    expectError(
      await call(h.url, 'POST', `/v23.0/${t.pnid}/settings`, { token: t.token, body: {} }),
      400,
      100,
    );
  });

  it('blocks, lists and unblocks users; blocked users cannot be messaged; partial failures are 139100', async () => {
    const t = await createTenant(h);
    await userWrites(t, '4915100000041');
    const blk = await call(h.url, 'POST', `/v23.0/${t.pnid}/block_users`, {
      token: t.token,
      body: { messaging_product: 'whatsapp', block_users: [{ user: '+49 151 00000041' }] },
    });
    expect(blk.status).toBe(200);
    expect(spec.responseErrors(`${NUMBER}/block_users`, 'post', 200, blk.body)).toEqual([]);
    expect(blk.body.block_users.added_users).toEqual([{ input: '+49 151 00000041', wa_id: '4915100000041' }]);
    expectError(await send(t, text('4915100000041')), 400, 131026);
    const list = await call(h.url, 'GET', `/v23.0/${t.pnid}/block_users?limit=10`, { token: t.token });
    expect(spec.responseErrors(`${NUMBER}/block_users`, 'get', 200, list.body)).toEqual([]);
    expect(list.body.data).toEqual([{ messaging_product: 'whatsapp', wa_id: '4915100000041' }]);
    const partial = await call(h.url, 'POST', `/v23.0/${t.pnid}/block_users`, {
      token: t.token,
      body: { messaging_product: 'whatsapp', block_users: [{ user: '4915100009999' }] },
    });
    expectError(partial, 400, 139100);
    expect(partial.body.block_users.failed_users[0]).toMatchObject({
      input: '4915100009999',
      errors: [{ code: 139100 }],
    });
    const un = await call(h.url, 'DELETE', `/v23.0/${t.pnid}/block_users`, {
      token: t.token,
      body: { messaging_product: 'whatsapp', block_users: [{ user: '4915100000041' }] },
    });
    expect(spec.responseErrors(`${NUMBER}/block_users`, 'delete', 200, un.body)).toEqual([]);
    expect((await send(t, text('4915100000041'))).status).toBe(200);
  });
});

describe('operator API', () => {
  it('requires the operator credential and never stores tokens or secrets in clear', async () => {
    expect((await call(h.url, 'GET', '/admin/v1/businesses')).status).toBe(401);
    expect((await call(h.url, 'GET', '/admin/v1/businesses', { token: `${OPERATOR_TOKEN}x` })).status).toBe(
      401,
    );
    expect((await call(h.url, 'GET', '/admin/v1/businesses', { token: a.token })).status).toBe(401);
    const bad = await admin(h, 'POST', '/businesses', { waba_id: 'x.y', name: '' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
    const pg = new Client({ connectionString: h.db.url });
    await pg.connect();
    try {
      const dump = JSON.stringify(
        (await pg.query(`SELECT * FROM business_forwarding.access_tokens`)).rows.concat(
          (await pg.query(`SELECT encode(app_secret_enc, 'escape') s FROM business_forwarding.businesses`))
            .rows,
        ),
      );
      expect(dump).not.toContain(a.token);
      expect(dump).not.toContain(a.appSecret);
    } finally {
      await pg.end();
    }
  });

  it("erases one user's data and tracks the other services' completion", async () => {
    const t = await createTenant(h);
    await userWrites(t, '4915100000051');
    const res = await admin(h, 'POST', `/businesses/${t.waba}/erasures`, {
      scope: 'user',
      wa_id: '4915100000051',
    });
    expect(res.status).toBe(202);
    expect(res.body.state).toBe('in_progress');
    expect(res.body.services['business-forwarding'].state).toBe('completed');
    const id = res.body.request_id as string;
    await waitFor(() =>
      published.some(
        (p) => p.subject.endsWith(`business.erase_requested.${t.waba}`) && p.data.request_id === id,
      ),
    );
    expectError(await send(t, text('4915100000051')), 400, 131047); // the window went with the user's data
    for (const service of ['crypto', 'storage', 'gateway'] as const) {
      await publishAs(
        h.nc,
        h.root,
        'business.erase_completed',
        { service },
        {
          request_id: id,
          service,
          counts: { rows: 1 },
          at: h.clock.now().toISOString(),
        },
      );
    }
    await waitFor(async () => (await admin(h, 'GET', `/erasures/${id}`)).body.state === 'completed');
  });

  it('expires a token on request, and erases a whole business (tokens stop working, data gone)', async () => {
    const t = await createTenant(h);
    await userWrites(t, '4915100000061');
    const second = await admin(h, 'POST', `/businesses/${t.waba}/tokens`, {});
    const expired = await admin(h, 'PATCH', `/businesses/${t.waba}/tokens/${second.body.id}`, {
      expires_at: new Date(h.clock.now().getTime() - 1000).toISOString(),
    });
    expect(expired.status).toBe(200);
    expectError(await send({ ...t, token: second.body.access_token }, text('4915100000061')), 401, 190);
    expect((await send(t, text('4915100000061'))).status).toBe(200);

    const res = await admin(h, 'POST', `/businesses/${t.waba}/erasures`, { scope: 'business' });
    expect(res.status).toBe(202);
    expect(res.body.services['business-forwarding'].counts).toMatchObject({
      webhook_events: 1,
      outbound_messages: 1,
    });
    const order = await waitFor(() =>
      published.find(
        (p) => p.subject.endsWith(`business.erase_requested.${t.waba}`) && p.data.scope === 'business',
      ),
    );
    expect(order?.data).toMatchObject({ phone_number_ids: [t.pnid], scope: 'business' });
    expectError(await send(t, text('4915100000061')), 401, 190);
    expect((await admin(h, 'GET', `/businesses/${t.waba}`)).status).toBe(404);
    expect((await admin(h, 'GET', `/erasures/${res.body.request_id}`)).body.state).toBe('in_progress');
  });
});
