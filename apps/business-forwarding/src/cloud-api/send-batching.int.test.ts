/**
 * Concurrent POST /messages are admitted and recorded in shared transactions (group commit). Each
 * send must still get the answer it would get alone, and the limit state and outbound rows must be
 * exactly those of the admitted sends. Real HTTP, NATS and Postgres; crypto is not running, so the
 * test stands in for it by publishing 'inbound.message'.
 */
import { Client } from 'pg';
import type { Subscription } from 'nats';
import { waitFor } from '@relay/testing';
import {
  admin,
  call,
  createTenant,
  inbound,
  publishAs,
  startHarness,
  startReplica,
  waitForInbound,
  type Harness,
  type HttpResult,
  type Tenant,
} from '../test-support/harness.test';

const S = 'business_forwarding';

let h: Harness;
let pg: Client;
let sub: Subscription;
const requested = new Set<string>();

const send = (base: string, t: Pick<Tenant, 'token'>, pnid: string, to: string) =>
  call(base, 'POST', `/v23.0/${pnid}/messages`, {
    token: t.token,
    body: { messaging_product: 'whatsapp', to, type: 'text', text: { body: `to ${to}` } },
  });

/** Statements the service sends to Postgres while `fn` runs (the service runs in this process). */
async function countingStatements<T>(fn: () => Promise<T>): Promise<{ result: T; statements: string[] }> {
  const statements: string[] = [];
  const original = Client.prototype.query;
  Client.prototype.query = function (this: Client, ...args: unknown[]) {
    const q = args[0] as string | { text?: string };
    statements.push(typeof q === 'string' ? q : (q?.text ?? ''));
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  try {
    return { result: await fn(), statements };
  } finally {
    Client.prototype.query = original;
  }
}

async function usersWrite(pnid: string, users: string[]): Promise<void> {
  const msgs = users.map((u) => inbound(pnid, u, 'hi', h.clock.now()));
  await Promise.all(
    msgs.map((m) => publishAs(h.nc, h.root, 'inbound.message', { phone_number_id: pnid }, m, m.envelope_id)),
  );
  for (const m of msgs) await waitForInbound(h, m.wamid);
}

beforeAll(async () => {
  h = await startHarness();
  pg = new Client({ connectionString: h.db.url });
  await pg.connect();
  sub = h.nc.subscribe(`${h.root}.v1.outbound.request.>`);
  void (async () => {
    for await (const m of sub) {
      requested.add((JSON.parse(new TextDecoder().decode(m.data)) as { wamid: string }).wamid);
    }
  })();
});

afterAll(async () => {
  sub?.unsubscribe();
  await pg?.end();
  await h?.close();
});

it('answers each of many concurrent sends across numbers and businesses as if sent alone, and records exactly the admitted ones', async () => {
  // Business A: number A1 (throughput 4/s) and number A2 (pair burst 2); business B: 2 unique users per 24 h.
  const a = await createTenant(h);
  const a2 = `9${a.pnid}`;
  expect(
    (
      await admin(h, 'POST', `/businesses/${a.waba}/phone_numbers`, {
        phone_number_id: a2,
        display_phone_number: '+1 555 0999',
      })
    ).status,
  ).toBe(201);
  expect(
    (
      await call(h.url, 'POST', `/v23.0/${a2}/register`, {
        token: a.token,
        body: { messaging_product: 'whatsapp', pin: '123456' },
      })
    ).status,
  ).toBe(200);
  const b = await createTenant(h);
  const eligible = [
    '4915200000001',
    '4915200000002',
    '4915200000003',
    '4915200000004',
    '4915200000005',
    '4915200000006',
  ];
  const blocked = '4915200000007';
  const silent = '4915200000008'; // never wrote: no 24-hour window
  const pairUser = '4915200000009';
  const tierUsers = ['4915200000011', '4915200000012', '4915200000013', '4915200000014'];
  await usersWrite(a.pnid, [...eligible, blocked]);
  await usersWrite(a2, [pairUser]);
  await usersWrite(b.pnid, tierUsers);
  const blk = await call(h.url, 'POST', `/v23.0/${a.pnid}/block_users`, {
    token: a.token,
    body: { messaging_product: 'whatsapp', block_users: [{ user: blocked }] },
  });
  expect(blk.status).toBe(200);
  expect((await admin(h, 'PATCH', `/phone_numbers/${a.pnid}`, { throughput_mps: 4 })).status).toBe(200);
  expect((await admin(h, 'PATCH', `/phone_numbers/${a2}`, { pair_burst: 2 })).status).toBe(200);
  expect((await admin(h, 'PATCH', `/businesses/${b.waba}`, { messaging_limit: 2 })).status).toBe(200);
  h.clock.advance(1000); // a fresh one-second throughput window for the burst

  const plan: { pnid: string; token: Tenant; to: string }[] = [
    ...eligible.map((to) => ({ pnid: a.pnid, token: a, to })),
    ...[blocked, blocked, silent, silent].map((to) => ({ pnid: a.pnid, token: a, to })),
    ...Array.from({ length: 5 }, () => ({ pnid: a2, token: a, to: pairUser })),
    ...[...tierUsers, ...tierUsers].map((to) => ({ pnid: b.pnid, token: b, to })),
  ];
  // Interleave numbers so batches mix them.
  plan.sort((x, y) => (x.to.slice(-1) + x.pnid < y.to.slice(-1) + y.pnid ? -1 : 1));
  const { result: answers, statements } = await countingStatements(() =>
    Promise.all(plan.map((p) => send(h.url, p.token, p.pnid, p.to))),
  );
  const codes = (pred: (p: (typeof plan)[number]) => boolean) =>
    answers
      .filter((_, i) => pred(plan[i]))
      .map((r: HttpResult): number => (r.status === 200 ? 200 : r.body.error?.code))
      .sort((x, y) => x - y);

  expect(codes((p) => p.to === blocked)).toEqual([131026, 131026]);
  expect(codes((p) => p.to === silent)).toEqual([131047, 131047]);
  expect(codes((p) => p.pnid === a.pnid && eligible.includes(p.to))).toEqual([
    200, 200, 200, 200, 130429, 130429,
  ]);
  expect(codes((p) => p.pnid === a2)).toEqual([200, 200, 131056, 131056, 131056]);
  // The tier admits two users; a user admitted once is free for its second message, the others are refused both times.
  const admittedTier = tierUsers.filter((u) => codes((p) => p.pnid === b.pnid && p.to === u).includes(200));
  expect(admittedTier).toHaveLength(2);
  for (const u of tierUsers) {
    expect(codes((p) => p.pnid === b.pnid && p.to === u)).toEqual(
      admittedTier.includes(u) ? [200, 200] : [131048, 131048],
    );
  }

  // Exactly the admitted sends were recorded (recipient, number, business) and requested from crypto.
  const accepted = answers.flatMap((r, i) =>
    r.status === 200 ? [{ wamid: r.body.messages[0].id as string, pnid: plan[i].pnid, to: plan[i].to }] : [],
  );
  expect(accepted).toHaveLength(10);
  const recorded = await pg.query(
    `SELECT wamid, phone_number_id, waba_id, wa_id FROM ${S}.outbound_messages
     WHERE phone_number_id = ANY($1) ORDER BY wamid`,
    [[a.pnid, a2, b.pnid]],
  );
  expect(recorded.rows).toEqual(
    accepted
      .map((x) => ({
        wamid: x.wamid,
        phone_number_id: x.pnid,
        waba_id: x.pnid === b.pnid ? b.waba : a.waba,
        wa_id: x.to,
      }))
      .sort((x, y) => (x.wamid < y.wamid ? -1 : 1)),
  );
  await waitFor(() => accepted.every((x) => requested.has(x.wamid)));

  // Limit state: every send that passed the recipient checks counted in its second, pair tokens
  // only for sends within throughput, tier contacts only for the admitted users.
  const windows = await pg.query(
    `SELECT key, count FROM ${S}.rate_windows WHERE key = ANY($1) ORDER BY key`,
    [[`tp:${a.pnid}`, `tp:${a2}`, `tp:${b.pnid}`]],
  );
  expect(Object.fromEntries(windows.rows.map((r) => [r.key, r.count]))).toEqual({
    [`tp:${a.pnid}`]: 6,
    [`tp:${a2}`]: 5,
    [`tp:${b.pnid}`]: 8,
  });
  const buckets = await pg.query(
    `SELECT phone_number_id, wa_id, tokens FROM ${S}.pair_buckets WHERE phone_number_id = ANY($1)`,
    [[a.pnid, a2]],
  );
  expect(buckets.rows.find((r) => r.phone_number_id === a2)).toEqual({
    phone_number_id: a2,
    wa_id: pairUser,
    tokens: 0,
  });
  const acceptedA1 = accepted.filter((x) => x.pnid === a.pnid).map((x) => x.to);
  expect(
    buckets.rows
      .filter((r) => r.phone_number_id === a.pnid)
      .map((r) => [r.wa_id, r.tokens])
      .sort(),
  ).toEqual(acceptedA1.sort().map((u) => [u, 44]));
  const contacts = await pg.query(`SELECT wa_id FROM ${S}.tier_contacts WHERE waba_id = $1 ORDER BY wa_id`, [
    b.waba,
  ]);
  expect(contacts.rows.map((r) => r.wa_id)).toEqual(admittedTier.sort());

  // Group commit: fewer outbound inserts (one per batch) than accepted sends. The PATCHes above
  // emptied the caches: each token, number and business is read once however many sends wait for it.
  const count = (needle: string) => statements.filter((s) => s.includes(needle)).length;
  expect(count(`INSERT INTO ${S}.outbound_messages`)).toBeGreaterThan(0);
  expect(count(`INSERT INTO ${S}.outbound_messages`)).toBeLessThan(accepted.length);
  expect(count(`FROM ${S}.access_tokens`)).toBeLessThanOrEqual(2);
  expect(count(`FROM ${S}.phone_numbers`)).toBeLessThanOrEqual(3);
  expect(count(`FROM ${S}.businesses`)).toBeLessThanOrEqual(2);
  expect(count(`FROM ${S}.abuse_reports`)).toBeLessThanOrEqual(3);
});

it('stops a revoked token at once in the replica that revoked it, and within AUTH_CACHE_MS in another', async () => {
  const t = await createTenant(h);
  await usersWrite(t.pnid, ['4915200000021']);
  const replica = await startReplica(h);
  try {
    const second = await admin(h, 'POST', `/businesses/${t.waba}/tokens`, {});
    const tok = { token: second.body.access_token as string };
    // Both processes have the token cached.
    expect((await send(h.url, tok, t.pnid, '4915200000021')).status).toBe(200);
    expect((await send(replica.url, tok, t.pnid, '4915200000021')).status).toBe(200);
    expect((await admin(h, 'DELETE', `/businesses/${t.waba}/tokens/${second.body.id}`)).status).toBe(200);
    expect((await send(h.url, tok, t.pnid, '4915200000021')).body.error?.code).toBe(190);
    // The other replica learns of it when its cache entry lapses (AUTH_CACHE_MS, 5 s by default).
    expect((await send(replica.url, tok, t.pnid, '4915200000021')).status).toBe(200);
    h.clock.advance(5001);
    expect((await send(replica.url, tok, t.pnid, '4915200000021')).body.error?.code).toBe(190);
    expect((await send(replica.url, t, t.pnid, '4915200000021')).status).toBe(200);
  } finally {
    await replica.close();
  }
});
