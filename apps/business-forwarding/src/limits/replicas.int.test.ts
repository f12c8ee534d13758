/**
 * Limits hold across replicas: two business-forwarding instances on the same Postgres and NATS share
 * the per-number throughput window and the pair-rate bucket (they live in Postgres). Real HTTP, NATS,
 * Postgres; crypto is not running, so the test stands in for it by publishing 'inbound.message'.
 */
import {
  call,
  createTenant,
  inbound,
  admin,
  publishAs,
  startHarness,
  startReplica,
  waitForInbound,
  type Harness,
} from '../test-support/harness.test';

let h: Harness;
let replica: { url: string; close(): Promise<void> };

beforeAll(async () => {
  h = await startHarness();
  replica = await startReplica(h);
});

afterAll(async () => {
  await replica?.close();
  await h?.close();
});

it('shares the throughput window and the pair bucket between replicas', async () => {
  const t = await createTenant(h);
  const users = ['4915144440001', '4915144440002', '4915144440003'];
  for (const u of users) {
    const m = inbound(t.pnid, u, 'hi', h.clock.now());
    await publishAs(h.nc, h.root, 'inbound.message', { phone_number_id: t.pnid }, m, m.envelope_id);
    await waitForInbound(h, m.wamid);
  }
  await admin(h, 'PATCH', `/phone_numbers/${t.pnid}`, { throughput_mps: 2, pair_burst: 1 });
  h.clock.advance(1000);
  const send = (base: string, to: string) =>
    call(base, 'POST', `/v23.0/${t.pnid}/messages`, {
      token: t.token,
      body: { messaging_product: 'whatsapp', to, text: { body: 'x' } },
    });
  // The replica has not served this number before the change, so both read the new limits (a replica
  // that had may keep the old ones for up to AUTH_CACHE_MS).
  expect((await send(h.url, users[0])).status).toBe(200);
  expect((await send(replica.url, users[1])).status).toBe(200);
  const third = await send(replica.url, users[2]);
  expect(third.body.error?.code).toBe(130429);
  h.clock.advance(1000);
  const again = await send(h.url, users[0]);
  expect(again.body.error?.code).toBe(131056); // user 0's single pair token went through the first replica
});

it('keeps throughput and the messaging-limit tier exact under concurrent batches of two replicas', async () => {
  // One business, two numbers: the tier counts users across both, so batches of different numbers
  // (which share no throughput row) must still not admit the same free slot twice.
  const t = await createTenant(h);
  const pnid2 = `9${t.pnid}`;
  await admin(h, 'POST', `/businesses/${t.waba}/phone_numbers`, {
    phone_number_id: pnid2,
    display_phone_number: '+1 555 0998',
  });
  await call(h.url, 'POST', `/v23.0/${pnid2}/register`, {
    token: t.token,
    body: { messaging_product: 'whatsapp', pin: '123456' },
  });
  const users = Array.from({ length: 12 }, (_, i) => `49151555500${String(i).padStart(2, '0')}`);
  const msgs = [t.pnid, pnid2].flatMap((p) => users.map((u) => inbound(p, u, 'hi', h.clock.now())));
  await Promise.all(
    msgs.map((m) =>
      publishAs(h.nc, h.root, 'inbound.message', { phone_number_id: m.phone_number_id }, m, m.envelope_id),
    ),
  );
  for (const m of msgs) await waitForInbound(h, m.wamid);
  await admin(h, 'PATCH', `/businesses/${t.waba}`, { messaging_limit: 4 });
  h.clock.advance(1000);
  const send = (base: string, pnid: string, to: string) =>
    call(base, 'POST', `/v23.0/${pnid}/messages`, {
      token: t.token,
      body: { messaging_product: 'whatsapp', to, text: { body: 'x' } },
    });
  // Each user is sent to from both numbers at once, through different replicas and in opposite orders
  // (so without the per-business lock each replica would fill the 4 slots with different users):
  // 4 users are admitted, both of their sends pass; the others are refused both times.
  const viaH = Promise.all(users.map((u) => send(h.url, t.pnid, u)));
  const viaReplica = Promise.all([...users].reverse().map((u) => send(replica.url, pnid2, u)));
  const [first, second] = await Promise.all([viaH, viaReplica]);
  second.reverse();
  const codes = (i: number) =>
    [first[i], second[i]].map((r) => (r.status === 200 ? 200 : r.body.error?.code));
  const admitted = users.filter((_, i) => codes(i).includes(200));
  expect(admitted).toHaveLength(4);
  for (const [i, u] of users.entries()) {
    expect(codes(i)).toEqual(admitted.includes(u) ? [200, 200] : [131048, 131048]);
  }

  await admin(h, 'PATCH', `/businesses/${t.waba}`, { messaging_limit: 0 });
  await admin(h, 'PATCH', `/phone_numbers/${t.pnid}`, { throughput_mps: 7 });
  // The replica holds the old business and number rows for up to AUTH_CACHE_MS: let them lapse.
  h.clock.advance(5001);
  const burst = await Promise.all(users.map((u, i) => send(i % 2 ? replica.url : h.url, t.pnid, u)));
  expect(burst.filter((r) => r.status === 200)).toHaveLength(7);
  expect(burst.filter((r) => r.body.error?.code === 130429)).toHaveLength(5);
});
