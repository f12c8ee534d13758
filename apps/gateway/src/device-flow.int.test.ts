import { randomUUID } from 'node:crypto';
import { DeviceApiError, MemoryStateStore, type DeviceClient, type IncomingMessage } from '@relay/device-sdk';
import { waitFor } from '@relay/testing';
import type { EventPayload } from '@relay/protocol';
import type { NatsBus } from '@relay/platform';
import { HOOK_TOKEN, TestWorld } from './test-support/gateway-harness.test';
import { StorageStandIn } from './test-support/storage-stand-in.test';
import { BusinessStandIn } from './test-support/business-stand-in.test';
import { authOf } from './test-support/raw-socket.test';

// Real Postgres, NATS/JetStream, HTTP, WebSocket and libsignal. crypto and storage are replaced by
// stand-ins on real NATS (see test-support/), since those services are built separately.
const world = new TestWorld('gwflow');
const PNID = '1500000001';
const ALICE = '4915100000001';
let url: string;
let storage: StorageStandIn;
let business: BusinessStandIn;
let crypto: NatsBus;
let observer: NatsBus;
let alice: DeviceClient;
const aliceStore = new MemoryStateStore();
const statuses: EventPayload<'status.update'>[] = [];
const reports: EventPayload<'business.abuse_report'>[] = [];
const erasures: EventPayload<'business.erase_completed'>[] = [];

beforeAll(async () => {
  await world.init();
  ({ url } = await world.gateway());
  storage = new StorageStandIn(await world.bus('storage')).start();
  crypto = await world.bus('crypto');
  business = await new BusinessStandIn(crypto, PNID).start();
  observer = await world.bus('business-forwarding');
  await observer.consume('status.update', { durable: 'obs-status' }, async (s) => void statuses.push(s));
  await observer.consume(
    'business.abuse_report',
    { durable: 'obs-abuse' },
    async (r) => void reports.push(r),
  );
  await observer.consume(
    'business.erase_completed',
    { durable: 'obs-erase' },
    async (e) => void erasures.push(e),
  );
});

afterAll(() => world.close());

describe('registration and keys', () => {
  it('verifies the phone through the HTTP hook and registers a device with its prekeys', async () => {
    alice = await world.device(url, ALICE, { store: aliceStore });
    expect(alice.address).toEqual({ wa_id: ALICE, device_id: 1 });
    const call = world.codes.calls.at(-1);
    expect(call?.authorization).toBe(`Bearer ${HOOK_TOKEN}`);
    expect(call?.body.code).toMatch(/^\d{6}$/);
    expect(await alice.keyCounts()).toEqual({ prekeys: 5, kyber_prekeys: 5 });
  });

  it('refuses a wrong code, and registration with a session that was never verified', async () => {
    const s = await alice.startVerification('4915100000009');
    const code = await world.codes.codeFor(s.session_id);
    await expect(alice.register(s.session_id, code === '000000' ? '111111' : '000000')).rejects.toMatchObject(
      {
        status: 422,
        code: 'verification_failed',
      },
    );
    const fresh = await alice.startVerification('4915100000009');
    const res = await fetch(`${url}/v1/devices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        session_id: fresh.session_id,
        registration_id: 7,
        identity_key: business.bundle().identity_key,
        signed_prekey: business.bundle().signed_prekey,
        kyber_last_resort_prekey: { ...business.bundle().kyber_prekey, last_resort: undefined },
      }),
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code: 'forbidden' } });
  });

  it('rejects an upload with one bad signature (422) and stores nothing of it', async () => {
    const before = await alice.keyCounts();
    // Keys signed by another identity (the business's): invalid for alice's identity key.
    const foreign = business.bundle();
    const err = await alice
      .uploadKeys({
        signed_prekey: foreign.signed_prekey,
        prekeys: [{ id: 900001, public_key: foreign.signed_prekey.public_key }],
        kyber_prekeys: [
          {
            id: 900002,
            public_key: foreign.kyber_prekey.public_key,
            signature: foreign.kyber_prekey.signature,
          },
        ],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceApiError);
    expect(err).toMatchObject({ status: 422, code: 'invalid_signature' });
    expect(await alice.keyCounts()).toEqual(before);
    const bundles = await crypto.request('gateway.device_bundles', { wa_id: ALICE, phone_number_id: PNID });
    expect(bundles.devices[0].signed_prekey.id).not.toBe(foreign.signed_prekey.id);
    expect(bundles.devices[0].prekey?.id).not.toBe(900001);
    await alice.refillPrekeys(true);
  });

  it('hands out each one-time key once to concurrent callers, then the last-resort Kyber key', async () => {
    expect(await alice.keyCounts()).toEqual({ prekeys: 5, kyber_prekeys: 5 });
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        crypto.request('gateway.device_bundles', { wa_id: ALICE, phone_number_id: PNID }),
      ),
    );
    const bundles = results.map((r) => r.devices[0]);
    const ec = bundles.flatMap((b) => (b.prekey ? [b.prekey.id] : []));
    const kyber = bundles.filter((b) => !b.kyber_prekey.last_resort).map((b) => b.kyber_prekey.id);
    expect(new Set(ec).size).toBe(5);
    expect(ec).toHaveLength(5);
    expect(new Set(kyber).size).toBe(5);
    expect(bundles.filter((b) => b.kyber_prekey.last_resort)).toHaveLength(3);
    expect(await alice.keyCounts()).toEqual({ prekeys: 0, kyber_prekeys: 0 });
    await expect(
      crypto.request('gateway.device_bundles', { wa_id: '4915199999999', phone_number_id: PNID }),
    ).rejects.toMatchObject({ code: 'not_found' });
    await alice.refillPrekeys();
    expect(await alice.keyCounts()).toEqual({ prekeys: 5, kyber_prekeys: 5 });
  });

  it('spends no one-time key on devices the caller knows, and lists every current device', async () => {
    const before = await alice.keyCounts();
    const known = await crypto.request('gateway.device_bundles', {
      wa_id: ALICE,
      phone_number_id: PNID,
      known_device_ids: [1],
    });
    expect(known).toEqual({ wa_id: ALICE, devices: [], device_ids: [1] });
    expect(await alice.keyCounts()).toEqual(before);
    // A device the caller does not know (or no longer exists) gets a bundle as usual.
    const other = await crypto.request('gateway.device_bundles', {
      wa_id: ALICE,
      phone_number_id: PNID,
      known_device_ids: [7],
    });
    expect(other.devices.map((d) => d.device_id)).toEqual([1]);
    expect(other.device_ids).toEqual([1]);
    expect(await alice.keyCounts()).toEqual({
      prekeys: before.prekeys - 1,
      kyber_prekeys: before.kyber_prekeys - 1,
    });
    await alice.refillPrekeys();
  });
});

describe('messaging', () => {
  const received: IncomingMessage[] = [];

  it('fetches the business bundle, sends an encrypted text the business decrypts', async () => {
    await alice.connect();
    alice.on('message', (m) => received.push(m));
    const sent = await alice.sendText(PNID, 'hello business');
    expect(sent.duplicate).toBe(false);
    const got = await waitFor(() =>
      business.received.find((r) => r.envelope.envelope_id === sent.envelope_id),
    );
    expect(got?.plaintext.content).toEqual({ type: 'text', text: { body: 'hello business' } });
    expect(got?.envelope).toMatchObject({
      phone_number_id: PNID,
      from: { wa_id: ALICE, device_id: 1 },
      type: 'prekey',
    });
  });

  it('receives and decrypts the business reply, acks it (delivered) and sends a read receipt', async () => {
    const to = { wa_id: ALICE, device_id: 1 };
    const reply = await business.encryptFor(to, 'hi alice');
    storage.enqueue(to, reply);
    const msg = await waitFor(() => received.find((m) => m.wamid === reply.wamid));
    expect(msg?.content).toEqual({ type: 'text', text: { body: 'hi alice' } });
    await waitFor(() => storage.queued(to).length === 0);
    const delivered = await waitFor(() =>
      statuses.find((s) => s.wamid === reply.wamid && s.status === 'delivered'),
    );
    expect(delivered).toMatchObject({ phone_number_id: PNID, recipient_id: ALICE, device_id: 1 });
    await alice.markRead(PNID, [reply.wamid]);
    await waitFor(() => statuses.find((s) => s.wamid === reply.wamid && s.status === 'read'));
  });

  it("surfaces the business's read receipt (Cloud API mark-as-read with typing) as a read event, not a message", async () => {
    const to = { wa_id: ALICE, device_id: 1 };
    const reads: { phone_number_id: string; message_id: string; typing: boolean }[] = [];
    alice.on('read', (r) => reads.push(r));
    const before = received.length;
    const readMsgId = 'wamid.HBgLNDkxNTEwMDAwMDAxFQIAEhgUM0E';
    const receipt = await business.encryptContentFor(to, {
      type: 'read_receipt',
      read_receipt: { message_id: readMsgId, typing_indicator: true },
    });
    storage.enqueue(to, receipt);
    await waitFor(() => reads.length === 1);
    expect(reads[0]).toEqual({ phone_number_id: PNID, message_id: readMsgId, typing: true });
    await waitFor(() => storage.queued(to).length === 0);
    expect(received.length).toBe(before);
  });

  it('surfaces a business identity change when a reset business writes first (bundle from the gateway)', async () => {
    // The same number with new keys (e.g. restored without its key store): it fetches alice's bundle
    // through gateway.device_bundles and sends a PreKey message.
    const reset = new BusinessStandIn(crypto, PNID);
    const changed: string[] = [];
    alice.on('identity_changed', (e) => changed.push(e.phone_number_id));
    await reset.startSessionWith({ wa_id: ALICE, device_id: 1 });
    const msg = await reset.encryptFor({ wa_id: ALICE, device_id: 1 }, 'we are back');
    expect(msg.type).toBe('prekey');
    storage.enqueue({ wa_id: ALICE, device_id: 1 }, msg);
    const got = await waitFor(() => received.find((m) => m.wamid === msg.wamid));
    expect(got?.content).toEqual({ type: 'text', text: { body: 'we are back' } });
    expect(changed).toEqual([PNID]);
  });

  it('acks a message it cannot decrypt as undecryptable: status failed, queue emptied', async () => {
    const failed: string[] = [];
    alice.on('decryption_failed', (f) => failed.push(f.wamid));
    const to = { wa_id: ALICE, device_id: 1 };
    const wamid = 'wamid.GARBAGEGARBAGE01';
    storage.enqueue(to, {
      wamid,
      phone_number_id: PNID,
      type: 'whisper',
      ciphertext: Buffer.alloc(80, 7).toString('base64'),
    });
    await waitFor(() => failed.includes(wamid));
    const status = await waitFor(() => statuses.find((s) => s.wamid === wamid));
    expect(status).toMatchObject({ status: 'failed', errors: [{ code: 131026 }] });
    await waitFor(() => storage.queued(to).length === 0);
  });

  it('tells the device when crypto could not decrypt its envelope', async () => {
    const failures: string[] = [];
    alice.on('failure', (f) => failures.push(`${f.envelope_id}:${f.reason}`));
    await crypto.publish(
      'inbound.failure',
      { phone_number_id: PNID },
      {
        envelope_id: 'envelope-0001',
        phone_number_id: PNID,
        from: { wa_id: ALICE, device_id: 1 },
        reason: 'undecryptable',
        detail: 'bad mac',
        failed_at: new Date().toISOString(),
      },
    );
    await waitFor(() => failures.includes('envelope-0001:undecryptable'));
  });
});

describe('abuse reports, erasure, connections and devices', () => {
  it('turns a block into an abuse report and erases the block with the business', async () => {
    await alice.report(PNID, 'spam_report');
    await alice.report(PNID, 'block');
    await waitFor(() => reports.filter((r) => r.wa_id === ALICE).length === 2);
    expect(reports.map((r) => r.kind)).toEqual(['spam_report', 'block']);
    const requestId = randomUUID();
    await observer.publish(
      'business.erase_requested',
      { waba_id: '77' },
      {
        request_id: requestId,
        waba_id: '77',
        phone_number_ids: [PNID],
        scope: 'user',
        wa_id: ALICE,
        at: new Date().toISOString(),
      },
    );
    const done = await waitFor(() => erasures.find((e) => e.request_id === requestId));
    expect(done?.service).toBe('gateway');
    expect(done?.counts.business_blocks).toBe(1);

    // A whole business erased: every user's block of its numbers goes.
    await alice.report(PNID, 'block');
    const all = randomUUID();
    await observer.publish(
      'business.erase_requested',
      { waba_id: '77' },
      {
        request_id: all,
        waba_id: '77',
        phone_number_ids: [PNID],
        scope: 'business',
        at: new Date().toISOString(),
      },
    );
    expect((await waitFor(() => erasures.find((e) => e.request_id === all)))?.counts.business_blocks).toBe(1);
  });

  it('closes the older connection (4409) when the same device connects again', async () => {
    const closed: number[] = [];
    alice.on('closed', (c) => closed.push(c.code));
    const again = await world.reopen(aliceStore);
    await again.connect();
    await waitFor(() => closed.includes(4409));
    alice = again;
  });

  it('keeps a connection when an older one of the device is announced late (from another replica), and yields to a newer one', async () => {
    const closed: number[] = [];
    const failures: string[] = [];
    alice.on('closed', (c) => closed.push(c.code));
    alice.on('failure', (f) => failures.push((f as { envelope_id: string }).envelope_id));
    const to = { wa_id: ALICE, device_id: 1 };
    // Epochs count this device's connects from 1: epoch 0 is older than the open connection.
    crypto.notify('device.control', to, {
      to,
      action: 'connected',
      connection_id: 'older-elsewhere',
      epoch: 0,
    });
    // A probe on the same NATS connection arrives after it: once the device sees the probe, the gateway
    // has handled the late announcement.
    crypto.notify('device.failure', to, {
      envelope_id: 'probe-after-late-announcement',
      phone_number_id: PNID,
      from: to,
      reason: 'undecryptable',
      detail: 'probe',
      failed_at: new Date().toISOString(),
    });
    await waitFor(() => failures.includes('probe-after-late-announcement'));
    expect(closed).toEqual([]);
    crypto.notify('device.control', to, {
      to,
      action: 'connected',
      connection_id: 'newer-elsewhere',
      epoch: Number.MAX_SAFE_INTEGER,
    });
    await waitFor(() => closed.includes(4409));
    alice = await world.reopen(aliceStore);
    await alice.connect();
  });

  it('lets the primary device remove another device: its socket closes 4403 and its credentials stop working', async () => {
    const secondStore = new MemoryStateStore();
    const second = await world.device(url, ALICE, { store: secondStore });
    expect(second.address?.device_id).toBe(2);
    const closed: number[] = [];
    second.on('closed', (c) => closed.push(c.code));
    await second.connect();
    const list = async () =>
      (
        (await (
          await fetch(`${url}/v1/devices`, { headers: { authorization: authOf(aliceStore) } })
        ).json()) as {
          devices: { device_id: number }[];
        }
      ).devices.map((d) => d.device_id);
    expect(await list()).toEqual([1, 2]);
    const res = await fetch(`${url}/v1/devices/2`, {
      method: 'DELETE',
      headers: { authorization: authOf(aliceStore) },
    });
    expect(res.status).toBe(204);
    await waitFor(() => closed.includes(4403));
    await expect(second.keyCounts()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    expect(await list()).toEqual([1]);
  });
});
