import { randomUUID } from 'node:crypto';
import { DataKeyDestroyedError, DataKeyStore, KeyRing, LocalKeyProvider } from '@relay/envelope-crypto';
import type { EventPayload } from '@relay/protocol';
import { waitFor } from '@relay/testing';
import { FakeClock, StorageHarness } from '../__fixtures__/harness';
import {
  ciphertext,
  inbound,
  newNumberId,
  newWaId,
  outbound,
  registered,
  status,
} from '../__fixtures__/events';

type Completed = EventPayload<'business.erase_completed'>;
const DBS = ['default', 'DE'];
const TABLES = ['messages', 'message_statuses', 'pending', 'contacts'];
const clock = new FakeClock(new Date('2026-07-01T09:00:00Z'));
let h: StorageHarness;
let completed: Completed[];
const local = newNumberId();
const regional = newNumberId();

async function rows(where: string, params: unknown[]): Promise<number> {
  let n = 0;
  for (const db of DBS) for (const t of TABLES) n += await h.count(db, t, where, params);
  return n;
}

async function converse(pn: string, user: string) {
  const out = outbound(pn, user, 'your order shipped', clock.now());
  await h.producer.publish(
    'inbound.message',
    { phone_number_id: pn },
    inbound(pn, user, 'where is my order', clock.now()),
  );
  await h.producer.publish('outbound.request', { phone_number_id: pn }, out);
  await h.producer.publish(
    'delivery.ciphertext',
    { wa_id: user, device_id: 1 },
    ciphertext(out, 1, clock.now()),
  );
  await h.producer.publish('status.update', { phone_number_id: pn }, status(out, 'delivered', clock.now()));
}

async function eraseRequest(req: Omit<EventPayload<'business.erase_requested'>, 'at' | 'waba_id'>) {
  const full = {
    ...req,
    waba_id: '777',
    at: clock.now().toISOString(),
  } as EventPayload<'business.erase_requested'>;
  await h.producer.publish('business.erase_requested', { waba_id: '777' }, full);
}

beforeAll(async () => {
  h = await StorageHarness.create('erase', { regions: ['DE'] });
  await h.start(clock);
  completed = (await h.events('business.erase_completed')) as Completed[];
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
});
afterAll(() => h?.close());

describe('erasure on the business’s order', () => {
  it("erasing a user removes their data in every region and leaves everyone else's", async () => {
    const gone = newWaId();
    const kept = newWaId();
    for (const pn of [local, regional]) {
      await converse(pn, gone);
      await converse(pn, kept);
    }
    // Per user and number: 2 messages, 2 statuses, 1 pending, 1 contact.
    await waitFor(
      async () => (await rows('wa_id = $1', [gone])) === 12 && (await rows('wa_id = $1', [kept])) === 12,
    );

    const requestId = randomUUID();
    await eraseRequest({
      request_id: requestId,
      phone_number_ids: [local, regional],
      scope: 'user',
      wa_id: gone,
    });
    await waitFor(() => completed.some((c) => c.request_id === requestId));
    expect(await rows('wa_id = $1', [gone])).toBe(0);
    expect(await rows('wa_id = $1', [kept])).toBe(12);
    for (const db of DBS) expect(await h.dump(db)).not.toContain(gone);
    const done = completed.find((c) => c.request_id === requestId);
    expect(done).toMatchObject({
      service: 'storage',
      counts: { messages: 4, message_statuses: 4, pending: 2, contacts: 2 },
    });
    // Audited with counts, never content or the user's identifier.
    const audit = await h
      .pool('DE')
      .query(`SELECT actor, purpose, counts FROM storage.audit_log WHERE request_id = $1`, [requestId]);
    expect(audit.rows).toEqual([
      { actor: 'waba:777', purpose: 'erase_user', counts: expect.objectContaining({ messages: 2 }) },
    ]);

    // Idempotent: the same order again changes nothing and completes again (JetStream dedupes the event).
    await eraseRequest({
      request_id: requestId,
      phone_number_ids: [local, regional],
      scope: 'user',
      wa_id: gone,
    });
    await waitFor(async () => (await h.count('default', 'audit_log', 'request_id = $1', [requestId])) === 2);
    expect(await rows('wa_id = $1', [kept])).toBe(12);
  });

  it('erasing a business leaves nothing readable: rows deleted, data keys destroyed', async () => {
    const user = newWaId();
    await converse(local, user);
    await converse(regional, user);
    await waitFor(async () => (await rows('wa_id = $1', [user])) === 12);
    // What a backup taken now would hold: a sealed body of each region.
    const backup = [];
    for (const db of DBS) {
      const r = await h
        .pool(db)
        .query(`SELECT phone_number_id, wamid, body_sealed FROM storage.messages LIMIT 1`);
      backup.push({ db, row: r.rows[0] as { phone_number_id: string; wamid: string; body_sealed: Buffer } });
    }

    const requestId = randomUUID();
    await eraseRequest({ request_id: requestId, phone_number_ids: [local, regional], scope: 'business' });
    await waitFor(() => completed.some((c) => c.request_id === requestId));
    expect(completed.find((c) => c.request_id === requestId)?.counts).toMatchObject({ data_keys: 2 });
    for (const pn of [local, regional]) expect(await rows('phone_number_id = $1', [pn])).toBe(0);
    for (const db of DBS) expect(await h.count(db, 'data_keys')).toBe(0);

    const provider = new LocalKeyProvider(String(h.env.MASTER_KEY));
    for (const { db, row } of backup) {
      const ring = new KeyRing(
        new DataKeyStore(
          {
            query: (s, p) =>
              h
                .pool(db)
                .query(s, p)
                .then((r) => r.rows),
          },
          'storage',
        ),
        provider,
      );
      await expect(ring.decrypt(row.phone_number_id, row.body_sealed, `msg:${row.wamid}`)).rejects.toThrow(
        DataKeyDestroyedError,
      );
    }
  });
});
