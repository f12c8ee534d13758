import type { IncomingMessage } from '@relay/device-sdk';
import { waitFor } from '@relay/testing';
import { TestWorld } from '../test-support/gateway-harness.test';
import { StorageStandIn } from '../test-support/storage-stand-in.test';
import { BusinessStandIn } from '../test-support/business-stand-in.test';

// Real Postgres, NATS/JetStream, WebSocket and libsignal; storage and crypto are stand-ins on real NATS.
// What is counted: how often the gateway asks storage for a device's queue (each ask is a round trip and
// database work in storage).
const world = new TestWorld('gwpump');
const PNID = '1500000003';
const ALICE = '4915100000021';
const to = { wa_id: ALICE, device_id: 1 };
let storage: StorageStandIn;
let business: BusinessStandIn;
const got: IncomingMessage[] = [];

beforeAll(async () => {
  await world.init();
  const { url } = await world.gateway();
  storage = new StorageStandIn(await world.bus('storage')).start();
  business = await new BusinessStandIn(await world.bus('crypto'), PNID).start();
  const alice = await world.device(url, ALICE);
  alice.on('message', (m) => got.push(m));
  await alice.connect();
  await alice.sendText(PNID, 'hi'); // the business now has a session with alice's device
  await waitFor(() => business.received.length === 1);
});

afterAll(() => world.close());

it('asks storage once per wake-up, not again after each ack when the queue is empty', async () => {
  await waitFor(() => storage.pendingCalls > 0); // the connection's first drain
  await new Promise((r) => setTimeout(r, 100));
  const before = storage.pendingCalls;
  const n = 5;
  for (let i = 0; i < n; i++) {
    const m = await business.encryptFor(to, `one by one ${i}`);
    storage.enqueue(to, m);
    await waitFor(() => got.some((g) => g.wamid === m.wamid) && storage.queued(to).length === 0);
  }
  await new Promise((r) => setTimeout(r, 200));
  expect(storage.pendingCalls - before).toBe(n);
});

it('coalesces a burst of wake-ups for one device into a few asks', async () => {
  const before = storage.pendingCalls;
  // Encrypted in order: one Signal session, each message advances it.
  const msgs: Awaited<ReturnType<BusinessStandIn['encryptFor']>>[] = [];
  for (let i = 0; i < 20; i++) msgs.push(await business.encryptFor(to, `burst ${i}`));
  for (const m of msgs) storage.enqueue(to, m); // 20 wake-ups, back to back
  await waitFor(() => msgs.every((m) => got.some((g) => g.wamid === m.wamid)));
  await waitFor(() => storage.queued(to).length === 0);
  expect(got.slice(-20).map((g) => g.wamid)).toEqual(msgs.map((m) => m.wamid));
  // One ask for the first wake-up, one follow-up for all that came while it was in flight.
  expect(storage.pendingCalls - before).toBeLessThanOrEqual(3);
});
