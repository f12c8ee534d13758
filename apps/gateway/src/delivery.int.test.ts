import type { INestApplication } from '@nestjs/common';
import { MemoryStateStore, type DeviceClient, type IncomingMessage } from '@relay/device-sdk';
import { waitFor } from '@relay/testing';
import { TestWorld } from './test-support/gateway-harness.test';
import { StorageStandIn } from './test-support/storage-stand-in.test';
import { BusinessStandIn } from './test-support/business-stand-in.test';
import { RawSocket, authOf } from './test-support/raw-socket.test';
import { ConnectionRegistry } from './ws/connection-registry';

// Real Postgres, NATS/JetStream, WebSocket and libsignal; storage (retransmission queue) and crypto
// (the business's Signal identity) are stand-ins on real NATS, see test-support/.
const world = new TestWorld('gwdeliv');
const PNID = '1500000002';
const BOB = '4915100000011';
const to = { wa_id: BOB, device_id: 1 };
let url: string;
let app: INestApplication;
let storage: StorageStandIn;
let business: BusinessStandIn;
const bobStore = new MemoryStateStore();
let bob: DeviceClient;

beforeAll(async () => {
  await world.init();
  // A small delivery window makes the backlog drain in several pages.
  ({ url, app } = await world.gateway({ WS_DELIVERY_WINDOW: '3' }));
  storage = new StorageStandIn(await world.bus('storage')).start();
  business = await new BusinessStandIn(await world.bus('crypto'), PNID).start();
  bob = await world.device(url, BOB, { store: bobStore });
  await bob.connect();
  await bob.sendText(PNID, 'start'); // the business now has a session with bob's device
  await waitFor(() => business.received.length === 1);
  await bob.close();
});

afterAll(() => world.close());

it('an offline device receives its backlog in order when it reconnects', async () => {
  const sent: string[] = [];
  for (let i = 0; i < 10; i++) {
    const m = await business.encryptFor(to, `offline ${i}`);
    storage.enqueue(to, m); // nobody holds bob: the wake-up is lost, the queue is not
    sent.push(m.wamid);
  }
  const again = await world.reopen(bobStore);
  const got: IncomingMessage[] = [];
  let emptyAt = -1;
  again.on('message', (m) => got.push(m));
  again.on('queue_empty', () => (emptyAt = got.length));
  await again.connect();
  await waitFor(() => got.length === 10 && storage.queued(to).length === 0);
  expect(got.map((m) => m.wamid)).toEqual(sent);
  expect(got.map((m) => (m.content.type === 'text' ? m.content.text.body : ''))).toEqual(
    sent.map((_, i) => `offline ${i}`),
  );
  expect(emptyAt).toBeGreaterThanOrEqual(3);
  await again.close();
});

it('redelivers what the device did not acknowledge, in order, on the next connection', async () => {
  const wamids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const m = await business.encryptFor(to, `unacked ${i}`);
    storage.enqueue(to, m, false);
    wamids.push(m.wamid);
  }
  const first = await RawSocket.open(url, authOf(bobStore));
  await waitFor(() => first.messages().length === 3); // window of 3, none acked
  await new Promise((r) => setTimeout(r, 200));
  expect(first.messages().map((f) => f.wamid)).toEqual(wamids.slice(0, 3));
  await first.close();

  const second = await RawSocket.open(url, authOf(bobStore));
  await waitFor(() => second.messages().length === 3);
  expect(second.messages().map((f) => f.wamid)).toEqual(wamids.slice(0, 3));
  second.send({ type: 'ack', id: 'ack-1', wamids: wamids.slice(0, 3) });
  await second.next((f) => f.type === 'result' && f.id === 'ack-1');
  await waitFor(() => second.messages().length === 4);
  expect(second.messages()[3].wamid).toBe(wamids[3]);
  await second.close();
  expect(storage.queued(to).map((i) => i.wamid)).toEqual([wamids[3]]);

  // The SDK decrypts the redelivered, already-decrypted message as a duplicate: acked, not surfaced.
  const sdk = await world.reopen(bobStore);
  const seen: string[] = [];
  sdk.on('message', (m) => seen.push(m.wamid));
  await sdk.connect();
  await waitFor(() => storage.queued(to).length === 0);
  expect(seen).toEqual([wamids[3]]);
  await sdk.close();
});

it('accepts a resent envelope (same id) once: acknowledged twice, delivered to the business once', async () => {
  const client = await world.reopen(bobStore);
  await client.connect();
  const frame = await client.encrypt(PNID, { type: 'text', text: { body: 'only once' } });
  const a = await client.request(frame);
  const b = await client.request(frame);
  expect(a.duplicate).toBe(false);
  expect(b.duplicate).toBe(true);
  await waitFor(() => business.received.some((r) => r.envelope.envelope_id === frame.id));
  await new Promise((r) => setTimeout(r, 300));
  expect(business.received.filter((r) => r.envelope.envelope_id === frame.id)).toHaveLength(1);
  await client.close();
});

it('reconnects after the connection drops and sends what was written meanwhile', async () => {
  const client = await world.reopen(bobStore);
  const events: string[] = [];
  client.on('connected', () => events.push('connected'));
  client.on('disconnected', (d) => events.push(`disconnected ${d.code}`));
  await client.connect();
  const frame = await client.encrypt(PNID, { type: 'text', text: { body: 'written while offline' } });
  // Sent from the disconnect handler: certainly before the reconnect, so it waits for it.
  const answered = new Promise<{ duplicate: boolean }>((resolve, reject) =>
    client.once('disconnected', () => client.request(frame).then(resolve, reject)),
  );
  // The gateway drops the connection as it does when shutting down (1001, not final).
  app.get(ConnectionRegistry).get(BOB, 1)?.close(1001, 'going away');
  expect(await answered).toEqual({ duplicate: false });
  await waitFor(() => business.received.some((r) => r.envelope.envelope_id === frame.id));
  expect(events).toEqual(['connected', 'disconnected 1001', 'connected']);
  await client.close();
});
