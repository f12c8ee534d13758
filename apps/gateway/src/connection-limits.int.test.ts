import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { MemoryStateStore } from '@relay/device-sdk';
import { waitFor } from '@relay/testing';
import { TestWorld } from './test-support/gateway-harness.test';
import { StorageStandIn } from './test-support/storage-stand-in.test';
import { authOf } from './test-support/raw-socket.test';

// A slow device and a silent device against a real gateway (Postgres, NATS, WebSocket). storage is a
// stand-in on real NATS (test-support/storage-stand-in); ciphertexts are random bytes here because
// the gateway never decrypts and this test is about the transport.
const world = new TestWorld('gwconn');
const WA = '4915100000051';
const to = { wa_id: WA, device_id: 1 };
let url: string;
let slowUrl: string;
let storage: StorageStandIn;
const store = new MemoryStateStore();

beforeAll(async () => {
  await world.init();
  ({ url } = await world.gateway({ WS_HEARTBEAT_MS: '2000' }));
  // Heartbeats stay slow here, so only the send-buffer bound can close the paused connection.
  ({ url: slowUrl } = await world.gateway({
    WS_MAX_BUFFERED_BYTES: String(64 * 1024),
    WS_DELIVERY_WINDOW: '500',
  }));
  storage = new StorageStandIn(await world.bus('storage')).start();
  await world.device(url, WA, { store });
});

afterAll(() => world.close());

const wsUrl = (base = url) => `${base.replace(/^http/, 'ws')}/v1/websocket`;

it('closes a device that does not read (4008) instead of buffering without bound; nothing is lost', async () => {
  for (let i = 0; i < 400; i++) {
    storage.enqueue(
      to,
      {
        wamid: `wamid.SLOW${String(i).padStart(8, '0')}`,
        phone_number_id: '1500000006',
        type: 'whisper',
        ciphertext: randomBytes(60_000).toString('base64'),
      },
      false,
    );
  }
  const ws = new WebSocket(wsUrl(slowUrl), { headers: { authorization: authOf(store) } });
  // Stop reading as soon as the connection is up: the kernel buffers fill, then the gateway's.
  ws.on('upgrade', (res) => res.socket.pause());
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise((r) => setTimeout(r, 1500));
  (ws as unknown as { _socket: { resume(): void } })._socket.resume();
  expect(await closed).toBe(4008);
  expect(storage.queued(to)).toHaveLength(400); // unacknowledged: all still queued for the next connection
});

it('terminates a connection that stops answering heartbeats', async () => {
  const ws = new WebSocket(wsUrl(), { headers: { authorization: authOf(store) }, autoPong: false });
  const opened = Date.now();
  const code = await new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
  expect(code).toBe(1006);
  expect(Date.now() - opened).toBeGreaterThanOrEqual(2000);
  expect(Date.now() - opened).toBeLessThan(10_000);
});

it('keeps a connection that answers heartbeats', async () => {
  const ws = new WebSocket(wsUrl(), { headers: { authorization: authOf(store) } });
  let closed = false;
  ws.on('close', () => (closed = true));
  ws.on('message', () => undefined);
  await waitFor(() => ws.readyState === WebSocket.OPEN);
  await new Promise((r) => setTimeout(r, 5000)); // two heartbeat rounds
  expect(closed).toBe(false);
  ws.close();
});
