import { randomBytes } from 'node:crypto';
import { waitFor } from '@relay/testing';
import { FakeClock, StorageHarness, masterKeySpec } from '../__fixtures__/harness';
import { KeyRotation } from '../db/key-rotation';
import { ciphertext, inbound, newNumberId, newWaId, outbound, registered } from '../__fixtures__/events';

const clock = new FakeClock(new Date('2026-08-01T09:00:00Z'));
let h: StorageHarness;

beforeAll(async () => {
  h = await StorageHarness.create('atrest', { regions: ['DE'] });
  await h.start(clock);
});
afterAll(() => h?.close());

describe('no message text at rest', () => {
  it("a pg_dump of every storage database contains none of the messages' text", async () => {
    const marker = () => `secret-${randomBytes(8).toString('hex')}`;
    const texts = {
      inbound: marker(),
      outbound: marker(),
      profile: marker(),
      device: marker(),
      failure: marker(),
    };
    const local = newNumberId();
    const regional = newNumberId();
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: local },
      registered(local, clock.now()),
    );
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: regional },
      registered(regional, clock.now(), { region: 'DE' }),
    );
    await waitFor(async () => (await h.count('default', 'numbers')) === 2);
    const user = newWaId();
    const wamids: string[] = [];
    for (const pn of [local, regional]) {
      const inMsg = inbound(pn, user, `Hi, ${texts.inbound}`, clock.now(), texts.profile);
      const out = outbound(pn, user, `Hello, ${texts.outbound}`, clock.now());
      wamids.push(inMsg.wamid, out.wamid);
      await h.producer.publish('inbound.message', { phone_number_id: pn }, inMsg);
      await h.producer.publish('outbound.request', { phone_number_id: pn }, out);
      await h.producer.publish(
        'delivery.ciphertext',
        { wa_id: user, device_id: 1 },
        ciphertext(out, 1, clock.now(), Buffer.from(texts.device)),
      );
      await h.producer.publish(
        'status.update',
        { phone_number_id: pn },
        {
          wamid: out.wamid,
          phone_number_id: pn,
          recipient_id: user,
          status: 'failed',
          timestamp: clock.now().toISOString(),
          errors: [{ code: 131026, title: 'Message undeliverable', details: texts.failure }],
        },
      );
    }
    await waitFor(async () => {
      const n = (await h.count('default', 'messages')) + (await h.count('DE', 'messages'));
      const f =
        (await h.count('default', 'message_statuses', `status = 'failed'`)) +
        (await h.count('DE', 'message_statuses', `status = 'failed'`));
      const p = (await h.count('default', 'pending')) + (await h.count('DE', 'pending'));
      return n === 4 && f === 2 && p === 2;
    });
    const dumps = [await h.dump('default'), await h.dump('DE')];
    for (const dump of dumps) {
      // The dump really has the rows (their ids are routing metadata)...
      expect(wamids.some((w) => dump.includes(w))).toBe(true);
      // ...but no text, profile name, error detail or device ciphertext, in any encoding.
      for (const t of Object.values(texts)) {
        expect(dump).not.toContain(t);
        expect(dump).not.toContain(Buffer.from(t).toString('hex'));
        expect(dump).not.toContain(Buffer.from(t).toString('base64'));
      }
    }
  });

  it('rotates the master key online: every data key rewrapped, stored data still readable', async () => {
    const pn = newNumberId();
    const user = newWaId();
    const out = outbound(pn, user, 'sealed before the rotation', clock.now());
    const bytes = Buffer.from('ciphertext sealed under the old master key');
    await h.producer.publish(
      'delivery.ciphertext',
      { wa_id: user, device_id: 1 },
      ciphertext(out, 1, clock.now(), bytes),
    );
    await waitFor(() => h.count('default', 'pending', 'wamid = $1', [out.wamid]));

    await h.stop();
    const oldKey = String(h.env.MASTER_KEY);
    h.env.MASTER_KEY = masterKeySpec().replace(/^m1:/, 'm2:');
    h.env.MASTER_KEY_PREVIOUS = oldKey;
    await h.start(clock);
    await h.app?.get(KeyRotation).done;
    for (const db of ['default', 'DE']) {
      const ids = await h.pool(db).query(`SELECT DISTINCT master_key_id FROM storage.data_keys`);
      expect(ids.rows).toEqual([{ master_key_id: 'm2' }]);
    }
    // The old master key can go now.
    await h.stop();
    delete h.env.MASTER_KEY_PREVIOUS;
    await h.start(clock);
    const q = await h.producer.request('storage.pending', { to: { wa_id: user, device_id: 1 }, limit: 5 });
    expect(q.items.map((i) => Buffer.from(i.ciphertext, 'base64').toString())).toEqual([bytes.toString()]);
  });
});
