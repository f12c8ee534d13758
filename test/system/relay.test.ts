/**
 * The whole relay as users run it: `npm start` with the four services as separate OS processes (two
 * crypto), real NATS/JetStream and Postgres, users on the device SDK (real libsignal sessions over the
 * WebSocket) and a business on a real webhook endpoint that verifies X-Hub-Signature-256.
 */
import {
  createTestDatabase,
  deleteStreams,
  testSubjectRoot,
  TEST_NATS_URL,
  waitFor,
  type TestDatabase,
} from '@relay/testing';
import { WebhookBusiness } from './support/business';
import { Relay, until } from './support/relay';
import { CodeHook, HOOK_TOKEN, Phone } from './support/users';

jest.setTimeout(120_000);

let db: TestDatabase;
let root: string;
let relay: Relay;
const hook = new CodeHook();
const shop = new WebhookBusiness();
const alice = new Phone('4915200000001', 'Alice Example');
const bob = new Phone('4915200000002', 'Bob Example');
const bobTablet = new Phone('4915200000002', 'Bob Example');
const carol = new Phone('4915200000003', 'Carol Example');
const dave = new Phone('4915200000004', 'Dave Example');
const daveLaptop = new Phone('4915200000004', 'Dave Example');

beforeAll(async () => {
  db = await createTestDatabase('system');
  root = testSubjectRoot('sys');
  relay = new Relay({
    natsUrl: TEST_NATS_URL,
    databaseUrl: db.url,
    subjectRoot: root,
    env: {
      VERIFICATION_HOOK_URL: await hook.start(),
      VERIFICATION_HOOK_TOKEN: HOOK_TOKEN,
      // crypto checks a recipient's device list on every business message (default: once a minute).
      DEVICE_LIST_TTL_MS: '0',
    },
  });
  await relay.start();
  await shop.setUp(relay);
  const gw = relay.url('gateway');
  for (const p of [alice, bob, bobTablet, carol]) await p.register(gw, hook);
  await Promise.all([alice, bob, bobTablet, carol].map((p) => p.connect()));
}, 180_000);

afterAll(async () => {
  await Promise.all([alice, bob, bobTablet, carol, dave, daveLaptop].map((p) => p.client?.close()));
  const clean = await relay?.stop();
  await shop.close();
  await hook.stop();
  await deleteStreams(root).catch(() => undefined);
  await db?.drop();
  expect(clean).toBe(true);
});

it('runs every service as its own process, with two crypto processes', () => {
  const pids = ['gateway', 'business-forwarding', 'crypto', 'crypto#2', 'storage'].map((s) => relay.pid(s));
  expect(new Set(pids).size).toBe(5);
  expect(pids).not.toContain(process.pid);
});

it("delivers a user's text to the webhook with the user's wa_id and profile name", async () => {
  const sent = await alice.sendText(shop.pnid, 'Hello shop, is my order ready?');
  expect(sent.duplicate).toBe(false);
  const m = await until(() => shop.messages.find((x) => x.text === 'Hello shop, is my order ready?'), 30_000);
  expect(m).toMatchObject({ from: alice.waId, profileName: 'Alice Example' });
  expect(m.id).toMatch(/^wamid\./);
  expect(shop.badSignatures).toBe(0);
});

it("delivers the business's text decrypted on the device, with sent, delivered and read in order", async () => {
  const wamid = await shop.sendText(relay, alice.waId, 'Yes, ready for pickup.');
  const got = await until(() => alice.inbox.find((m) => m.wamid === wamid), 30_000);
  expect(got).toMatchObject({
    phone_number_id: shop.pnid,
    content: { type: 'text', text: { body: 'Yes, ready for pickup.' } },
  });
  await waitFor(() => shop.statusesOf(wamid).includes('delivered'), 30_000);
  await alice.client.markRead(shop.pnid, [wamid]);
  await waitFor(() => shop.statusesOf(wamid).includes('read'), 30_000);
  expect(shop.statusesOf(wamid)).toEqual(['sent', 'delivered', 'read']);
  expect(shop.statuses.find((s) => s.id === wamid)?.recipient).toBe(alice.waId);
});

it('holds a message for an offline user, delivers it on reconnect, and only then reports delivered', async () => {
  // Carol wrote to the shop (opening the 24-hour window), then went offline.
  await carol.sendText(shop.pnid, 'Where is my parcel?');
  await waitFor(() => shop.messages.find((m) => m.from === carol.waId), 30_000);
  await carol.client.close();
  const wamid = await shop.sendText(relay, carol.waId, 'Your parcel has shipped.');
  await waitFor(() => shop.statusesOf(wamid).includes('sent'), 30_000);
  await new Promise((r) => setTimeout(r, 1000));
  expect(shop.statusesOf(wamid)).toEqual(['sent']);
  await carol.reopen();
  const got = await until(() => carol.inbox.find((m) => m.wamid === wamid), 30_000);
  expect(got.content).toEqual({ type: 'text', text: { body: 'Your parcel has shipped.' } });
  await waitFor(() => shop.statusesOf(wamid).includes('delivered'), 30_000);
  expect(shop.statusesOf(wamid)).toEqual(['sent', 'delivered']);
});

it("delivers the business's message to both of a user's devices", async () => {
  expect(bob.client.address?.device_id).not.toBe(bobTablet.client.address?.device_id);
  // Both devices write to the shop over their own sessions (this also opens the 24-hour window).
  await bob.sendText(shop.pnid, 'from the phone');
  await bobTablet.sendText(shop.pnid, 'from the tablet');
  await waitFor(() => shop.messages.filter((m) => m.from === bob.waId).length === 2, 30_000);
  expect(shop.messages.filter((m) => m.from === bob.waId).map((m) => m.text)).toEqual(
    expect.arrayContaining(['from the phone', 'from the tablet']),
  );
  const wamid = await shop.sendText(relay, bob.waId, 'Thanks for your order, Bob.');
  for (const device of [bob, bobTablet]) {
    const got = await until(() => device.inbox.find((m) => m.wamid === wamid), 30_000);
    expect(got.content).toEqual({ type: 'text', text: { body: 'Thanks for your order, Bob.' } });
  }
  await waitFor(() => shop.statusesOf(wamid).includes('delivered'), 30_000);
});

it('reaches a device the user links after the conversation started, with the messages sent after that', async () => {
  const gw = relay.url('gateway');
  await dave.register(gw, hook);
  await dave.connect();
  await dave.sendText(shop.pnid, 'hello from my phone');
  await waitFor(() => shop.messages.some((m) => m.from === dave.waId), 30_000);
  const before = await shop.sendText(relay, dave.waId, 'Hi Dave.');
  await until(() => dave.inbox.find((m) => m.wamid === before), 30_000);

  await daveLaptop.register(gw, hook);
  await daveLaptop.connect();
  expect(daveLaptop.client.address?.device_id).not.toBe(dave.client.address?.device_id);
  const after = await shop.sendText(relay, dave.waId, 'Your order is ready.');
  for (const device of [dave, daveLaptop]) {
    const got = await until(() => device.inbox.find((m) => m.wamid === after), 30_000);
    expect(got.content).toEqual({ type: 'text', text: { body: 'Your order is ready.' } });
  }
  expect(daveLaptop.inbox.find((m) => m.wamid === before)).toBeUndefined();
  await waitFor(() => shop.statusesOf(after).includes('delivered'), 30_000);
});
