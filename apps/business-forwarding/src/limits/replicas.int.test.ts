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
