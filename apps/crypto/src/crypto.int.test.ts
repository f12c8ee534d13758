import { createHash } from 'node:crypto';
import { DevicePlaintext } from '@relay/protocol';
import { CryptoTestEnv, randomId, until } from './testing/harness.test';
import { DeviceClient } from './testing/device-client';
import type { CryptoServices } from './services';

// Real Postgres, real NATS/JetStream, real libsignal on both sides; the crypto service runs in-process
// (its libsignal worker threads included). gateway's device_bundles RPC is answered by a stand-in on
// real NATS backed by real device-side libsignal stores (see testing/harness.test.ts).
const t = new CryptoTestEnv();
let svc: CryptoServices;
const PN = '15550001';

beforeAll(async () => {
  await t.setup('crypto');
  // Device lists checked on every business message (the default trusts one for 60 s).
  svc = await t.startInProcess({
    PREKEY_POOL_SIZE: '3',
    PREKEY_REFILL_THRESHOLD: '1',
    DEVICE_LIST_TTL_MS: '0',
  });
  await t.provision(PN);
});
afterAll(() => t.teardown());

const body = (m: { payload: { content: unknown } }) =>
  (m.payload.content as { text: { body: string } }).text.body;

async function connectDevice(
  waId: string,
  deviceId = 1,
  device = new DeviceClient(waId, deviceId),
): Promise<DeviceClient> {
  await device.startSession(PN, await t.bundle(PN, device));
  return device;
}

/** Sends a message from the device and waits for its decrypted event. */
async function say(device: DeviceClient, text: string) {
  const env = await t.envelope(PN, device, text);
  await t.send(env);
  return (await until(() => t.messageFor(env.envelope_id)[0]))?.payload;
}

/** The business sends; returns the plaintexts each device of the user decrypts. */
async function reply(to: string, text: string, devices: DeviceClient[]) {
  const wamid = await t.businessSends(PN, to, text);
  const got = await until(() => {
    const d = t.deliveries.filter((x) => x.payload.wamid === wamid);
    return d.length >= devices.length ? d : undefined;
  });
  return Promise.all(
    got.map(async (d) => {
      const dev = devices.find((x) => x.deviceId === d.payload.to.device_id);
      if (!dev) throw new Error('delivery for unknown device');
      expect(d.msgId).toBe(`${wamid}.${to}.${dev.deviceId}`);
      return DevicePlaintext.parse(JSON.parse(await dev.decrypt(PN, d.payload.type, d.payload.ciphertext)));
    }),
  );
}

describe('crypto service with a real device-side libsignal client', () => {
  it('provisions idempotently: a second registration event changes nothing', async () => {
    const before = await t.ds.query(
      `SELECT identity_public FROM crypto.identities WHERE phone_number_id = $1`,
      [PN],
    );
    await t.bus.publish(
      'business.number_registered',
      { phone_number_id: PN },
      {
        phone_number_id: PN,
        waba_id: '900',
        display_phone_number: `+${PN}`,
        retention_days: 30,
        at: new Date().toISOString(),
      },
      { msgId: randomId() },
    );
    await new Promise((r) => setTimeout(r, 500));
    const after = await t.ds.query(
      `SELECT identity_public FROM crypto.identities WHERE phone_number_id = $1`,
      [PN],
    );
    expect(after).toEqual(before);
    const pools = await t.ds.query(
      `SELECT count(*)::int AS n FROM crypto.prekeys WHERE phone_number_id = $1`,
      [PN],
    );
    expect(pools[0].n).toBe(3);
  });

  it('first message, replies both ways, out of order and duplicates', async () => {
    const alice = await connectDevice('4915100000001');
    const first = await t.envelope(PN, alice, 'hello business');
    expect(first.type).toBe('prekey');
    await t.send(first);
    const m1 = (await until(() => t.messageFor(first.envelope_id)[0])).payload;
    expect(body({ payload: m1 })).toBe('hello business');
    expect(m1.from).toEqual({ wa_id: '4915100000001', device_id: 1 });
    expect(m1.identity_key_hash).toBe(
      createHash('sha256').update(alice.identity.publicKey.serialize()).digest('hex'),
    );
    expect(m1.identity_changed).toBe(false);

    // The same envelope again (gateway redelivery, new NATS msg id): no second message.
    await t.send(first, randomId());
    // A copy of the first ciphertext under a new envelope id: libsignal says DuplicatedMessage; dropped.
    await t.send({ ...first, envelope_id: randomId() });

    const [r1] = await reply('4915100000001', 'hi alice', [alice]);
    expect(r1.content).toEqual({ type: 'text', text: { body: 'hi alice' } });
    expect(r1.wamid).toMatch(/^wamid\./);

    // Three messages delivered to crypto in reverse order.
    const envs = [];
    for (const text of ['one', 'two', 'three']) envs.push(await t.envelope(PN, alice, text));
    expect(envs.every((e) => e.type === 'whisper')).toBe(true);
    for (const e of [...envs].reverse()) await t.send(e);
    for (const e of envs) await until(() => t.messageFor(e.envelope_id)[0]);
    // A duplicated whisper message under a new envelope id is dropped too.
    await t.send({ ...envs[1], envelope_id: randomId() });

    // Business-side messages decrypted out of order on the device.
    const wamids = [`wamid.${randomId()}`, `wamid.${randomId()}`];
    for (const wamid of wamids) await t.businessSends(PN, '4915100000001', wamid, wamid);
    const ds = await until(() => {
      const d = wamids.map((w) => t.deliveries.find((x) => x.payload.wamid === w));
      return d.every(Boolean) ? d : undefined;
    });
    for (const d of [...ds].reverse()) {
      const p = d
        ? DevicePlaintext.parse(JSON.parse(await alice.decrypt(PN, d.payload.type, d.payload.ciphertext)))
        : undefined;
      expect(p?.wamid).toBe(d?.payload.wamid);
    }
    expect((await say(alice, 'still here')).content).toEqual({ type: 'text', text: { body: 'still here' } });

    await new Promise((r) => setTimeout(r, 500));
    const fromAlice = (await t.streamMessages('inbound.message')).filter(
      (m) => (m.data as { from: { wa_id: string } }).from.wa_id === '4915100000001',
    );
    expect(fromAlice).toHaveLength(5);
    expect(new Set(fromAlice.map((m) => m.msgId)).size).toBe(5);
    expect(t.failures.filter((f) => f.payload.from.wa_id === '4915100000001')).toEqual([]);
  });

  it('encrypts for every device of a user without a session (bundles from gateway), and they answer', async () => {
    const wa = '4915100000002';
    const devices = [new DeviceClient(wa, 1), new DeviceClient(wa, 2)];
    t.directory.set(wa, devices);
    const got = await reply(wa, 'welcome', devices);
    expect(got.map((p) => p.content)).toEqual([
      { type: 'text', text: { body: 'welcome' } },
      { type: 'text', text: { body: 'welcome' } },
    ]);
    expect(
      t.deliveries.filter((d) => d.payload.to.wa_id === wa).every((d) => d.payload.type === 'prekey'),
    ).toBe(true);
    for (const d of devices) expect((await say(d, `from ${d.deviceId}`)).from.device_id).toBe(d.deviceId);
    const again = await reply(wa, 'again', devices);
    expect(again).toHaveLength(2);
    expect(
      t.deliveries
        .filter((d) => d.payload.to.wa_id === wa)
        .slice(-2)
        .every((d) => d.payload.type === 'whisper'),
    ).toBe(true);
  });

  it("follows the recipient's devices: one linked after the first conversation gets the next message, a removed one no more", async () => {
    const wa = '4915100000003';
    const phone = await connectDevice(wa, 1);
    t.directory.set(wa, [phone]);
    await say(phone, 'hi');
    expect((await reply(wa, 'one', [phone])).map((p) => p.content)).toEqual([
      { type: 'text', text: { body: 'one' } },
    ]);

    // A second device is linked: the next message reaches both (a session is set up with the new one).
    const laptop = new DeviceClient(wa, 2);
    t.directory.set(wa, [phone, laptop]);
    const since = (n: number) => t.deliveries.slice(n).filter((d) => d.payload.to.wa_id === wa);
    let n = t.deliveries.length;
    const two = await reply(wa, 'two', [phone, laptop]);
    expect(two.map((p) => p.content)).toEqual([
      { type: 'text', text: { body: 'two' } },
      { type: 'text', text: { body: 'two' } },
    ]);
    expect(
      since(n)
        .map((d) => [d.payload.to.device_id, d.payload.type])
        .sort(),
    ).toEqual([
      [1, 'whisper'],
      [2, 'prekey'],
    ]);

    // The phone is removed: the next message goes to the laptop only.
    t.directory.set(wa, [laptop]);
    n = t.deliveries.length;
    const three = await reply(wa, 'three', [laptop]);
    expect(three.map((p) => p.content)).toEqual([{ type: 'text', text: { body: 'three' } }]);
    await new Promise((r) => setTimeout(r, 300));
    expect(since(n).map((d) => d.payload.to)).toEqual([{ wa_id: wa, device_id: 2 }]);

    // No device left: the business learns the message is undeliverable.
    t.directory.set(wa, []);
    const wamid = await t.businessSends(PN, wa, 'gone');
    const failure = await until(() => t.outboundFailures.find((f) => f.payload.wamid === wamid));
    expect(failure?.payload.reason).toBe('no_devices');
    expect(t.deliveries.filter((d) => d.payload.wamid === wamid)).toEqual([]);
  });

  it('reports no_devices when the recipient has no device', async () => {
    const wamid = await t.businessSends(PN, '4915100000099', 'x');
    const f = await until(() => t.outboundFailures.find((x) => x.payload.wamid === wamid));
    expect(f.payload.reason).toBe('no_devices');
    expect(f.msgId).toBe(`${wamid}.failure`);
  });

  it('falls back to the last-resort Kyber key when the pool is empty, refills, and refuses a replayed first message', async () => {
    // Hold the identity row so the background refill (SKIP LOCKED) cannot run yet: exhaustion is deterministic.
    const holder = t.ds.createQueryRunner();
    await holder.connect();
    await holder.startTransaction();
    await holder.query(`SELECT 1 FROM crypto.identities WHERE phone_number_id = $1 FOR UPDATE`, [PN]);
    const devices = Array.from({ length: 4 }, (_, i) => new DeviceClient(`49151000010${i}`, 1));
    const bundles = await Promise.all(devices.map((d) => t.bundle(PN, d)));
    await holder.rollbackTransaction();
    await holder.release();
    const oneTime = bundles.filter((b) => !b.kyber_prekey.last_resort);
    // The pool had 3 minus the ones used earlier in this file; at least one request found it empty.
    expect(bundles.some((b) => b.kyber_prekey.last_resort && b.prekey === undefined)).toBe(true);
    expect(new Set(oneTime.map((b) => b.kyber_prekey.id)).size).toBe(oneTime.length);
    expect(new Set(oneTime.flatMap((b) => (b.prekey ? [b.prekey.id] : []))).size).toBe(
      oneTime.filter((b) => b.prekey).length,
    );
    for (const [i, d] of devices.entries()) await d.startSession(PN, bundles[i]);
    for (const d of devices)
      expect(body({ payload: await say(d, `hi from ${d.waId}`) })).toBe(`hi from ${d.waId}`);

    // The refill ran once the lock was gone (or runs now): one-time keys are handed out again.
    await svc.provisioning.refill(PN);
    const fresh = await t.bundle(PN, new DeviceClient('4915100000200', 1));
    expect(fresh.kyber_prekey.last_resort).toBe(false);
    expect(fresh.prekey).toBeDefined();

    // Replay a last-resort first message as if from another device: the Kyber triple is already used.
    const lr = devices[bundles.findIndex((b) => b.kyber_prekey.last_resort)];
    const victim = new DeviceClient(lr.waId, 1, lr.identity);
    // Same signed prekey and last-resort Kyber key, no one-time EC key (that one is used up).
    await victim.startSession(PN, { ...bundles[devices.indexOf(lr)], prekey: undefined });
    const original = await t.envelope(PN, victim, 'replay me');
    await t.send(original);
    await until(() => t.messageFor(original.envelope_id)[0] ?? t.failureFor(original.envelope_id)[0]);
    expect(t.failureFor(original.envelope_id)).toEqual([]);
    const replay = { ...original, envelope_id: randomId(), from: { wa_id: lr.waId, device_id: 9 } };
    await t.send(replay);
    const f = await until(() => t.failureFor(replay.envelope_id)[0]);
    expect(f.payload.reason).toBe('replayed_prekey');
  });

  it('keeps conversations working across a signed prekey rotation', async () => {
    const before = await connectDevice('4915100000301'); // bundle with the current signed prekey
    const talking = await connectDevice('4915100000302');
    await say(talking, 'before rotation');
    const oldId = (await t.bundle(PN, new DeviceClient('4915100000303', 1))).signed_prekey.id;
    const rotated = await svc.provisioning.rotate(PN);
    expect(rotated?.signedId).not.toBe(oldId);
    // A first message built on the previous signed prekey still decrypts (grace period)...
    expect(body({ payload: await say(before, 'built before rotation') })).toBe('built before rotation');
    // ...an established session continues, and new devices get the new key.
    await say(talking, 'after rotation');
    await reply('4915100000302', 'still fine', [talking]);
    const next = await t.bundle(PN, new DeviceClient('4915100000304', 1));
    expect(next.signed_prekey.id).toBe(rotated?.signedId);
    expect(next.kyber_prekey.last_resort || next.kyber_prekey.id !== rotated?.lastResortId).toBe(true);
    const late = await connectDevice('4915100000304');
    await say(late, 'after rotation, new device');
  });

  it('accepts and reports a user whose identity key changed (reinstall)', async () => {
    const wa = '4915100000401';
    const old = await connectDevice(wa);
    const m1 = await say(old, 'old phone');
    const reinstalled = await connectDevice(wa, 1, new DeviceClient(wa, 1));
    const m2 = await say(reinstalled, 'new phone');
    expect(m2.identity_changed).toBe(true);
    expect(m2.identity_key_hash).not.toBe(m1.identity_key_hash);
    const m3 = await say(reinstalled, 'new phone again');
    expect(m3.identity_changed).toBe(false);
    t.directory.set(wa, [reinstalled]);
    const [r] = await reply(wa, 'noted', [reinstalled]);
    expect(r.content).toEqual({ type: 'text', text: { body: 'noted' } });
  });

  it('turns bad input into failure events and keeps going', async () => {
    const dev = await connectDevice('4915100000501');
    const garbage = {
      ...(await t.envelope(PN, dev, 'x')),
      envelope_id: randomId(),
      type: 'whisper' as const,
      ciphertext: Buffer.from('not a signal message').toString('base64'),
    };
    await t.send(garbage);
    expect((await until(() => t.failureFor(garbage.envelope_id)[0])).payload.reason).toBe('malformed');

    const unknown = { ...garbage, envelope_id: randomId(), phone_number_id: '999999' };
    await t.send(unknown);
    expect((await until(() => t.failureFor(unknown.envelope_id)[0])).payload.reason).toBe(
      'unknown_recipient',
    );

    const ct = await dev.encrypt(PN, 'this is not JSON');
    const bad = { ...garbage, envelope_id: randomId(), type: ct.type, ciphertext: ct.ciphertext };
    await t.send(bad);
    expect((await until(() => t.failureFor(bad.envelope_id)[0])).payload.reason).toBe('invalid_plaintext');

    // A read receipt is something businesses send users, never the other way round.
    const receiptCt = await dev.encrypt(
      PN,
      JSON.stringify({
        v: 1,
        sent_at: Date.now(),
        content: { type: 'read_receipt', read_receipt: { message_id: 'wamid.AAAAAAAAAAAA' } },
      }),
    );
    const receipt = {
      ...garbage,
      envelope_id: randomId(),
      type: receiptCt.type,
      ciphertext: receiptCt.ciphertext,
    };
    await t.send(receipt);
    const refused = (await until(() => t.failureFor(receipt.envelope_id)[0])).payload;
    expect(refused.reason).toBe('invalid_plaintext');
    expect(refused.detail).toMatch(/read_receipt/);

    const big = {
      ...garbage,
      envelope_id: randomId(),
      ciphertext: Buffer.alloc(70_000, 1).toString('base64'),
    };
    await t.send(big);
    expect((await until(() => t.failureFor(big.envelope_id)[0])).payload.reason).toBe('oversized');

    // A device crypto never talked to: failure, and no empty session row left behind.
    const stranger = { ...garbage, envelope_id: randomId(), from: { wa_id: '4915100000599', device_id: 1 } };
    await t.send(stranger);
    expect((await until(() => t.failureFor(stranger.envelope_id)[0])).payload.reason).toBe('malformed');
    expect(await t.ds.query(`SELECT 1 FROM crypto.sessions WHERE state IS NULL`)).toEqual([]);

    // The session survived all of it.
    expect(body({ payload: await say(dev, 'after the noise') })).toBe('after the noise');
  });

  it('erases one user, then crypto-shreds a whole number', async () => {
    const wa = '4915100000601';
    const dev = await connectDevice(wa);
    await say(dev, 'erase me');
    const userReq = {
      request_id: crypto.randomUUID(),
      waba_id: '900',
      phone_number_ids: [PN],
      scope: 'user' as const,
      wa_id: wa,
      at: new Date().toISOString(),
    };
    await t.bus.publish('business.erase_requested', { waba_id: '900' }, userReq);
    const done = await until(() => t.erasures.find((e) => e.payload.request_id === userReq.request_id));
    expect(done.payload.counts.sessions).toBe(1);
    expect(await t.ds.query(`SELECT 1 FROM crypto.sessions WHERE wa_id = $1`, [wa])).toEqual([]);

    const pn2 = '15550002';
    await t.provision(pn2);
    const bizReq = {
      request_id: crypto.randomUUID(),
      waba_id: '900',
      phone_number_ids: [pn2],
      scope: 'business' as const,
      at: new Date().toISOString(),
    };
    await t.bus.publish('business.erase_requested', { waba_id: '900' }, bizReq);
    const shred = await until(() => t.erasures.find((e) => e.payload.request_id === bizReq.request_id));
    expect(shred.payload.counts).toMatchObject({ data_keys: 1, identities: 1 });
    expect(await t.ds.query(`SELECT 1 FROM crypto.data_keys WHERE tenant = $1`, [pn2])).toEqual([]);
    expect(await t.ds.query(`SELECT 1 FROM crypto.prekeys WHERE phone_number_id = $1`, [pn2])).toEqual([]);
    await expect(t.bundle(pn2, dev)).rejects.toMatchObject({ code: 'not_found' });
  });
});
