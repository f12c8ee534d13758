import { waitFor } from '@relay/testing';
import type { PendingItem } from '@relay/protocol';
import { FakeClock, StorageHarness } from '../__fixtures__/harness';
import { ciphertext, newNumberId, newWaId, outbound } from '../__fixtures__/events';
import { StorageDatabases } from '../db/storage-databases';

let h: StorageHarness;
const clock = new FakeClock(new Date('2026-03-01T10:00:00Z'));
const pn = newNumberId();

beforeAll(async () => {
  h = await StorageHarness.withNumber('batch', clock, pn);
});
afterAll(() => h?.close());

/** The statements storage sends to the default database while fn runs (storage is in this process). */
async function statements(fn: () => Promise<void>): Promise<string[]> {
  const ds = h.app?.get(StorageDatabases).defaultDb.ds;
  if (!ds) throw new Error('storage is not running');
  const spy = jest.spyOn(ds, 'query');
  try {
    await fn();
    return spy.mock.calls.map(([sql]) => sql.replace(/\s+/g, ' '));
  } finally {
    spy.mockRestore();
  }
}

describe('retransmission queue under many devices at once', () => {
  it('answers concurrent requests of many devices with one statement, each device only its own items in order, each read audited', async () => {
    const users = Array.from({ length: 10 }, () => newWaId());
    const devices = users.flatMap((wa_id) => [1, 2].map((device_id) => ({ wa_id, device_id })));
    const key = (d: { wa_id: string; device_id: number }) => `${d.wa_id}.${d.device_id}`;
    const queued = new Map<string, string[]>(devices.map((d) => [key(d), []]));
    // Interleaved across devices, as crypto publishes them.
    for (let round = 0; round < 3; round++) {
      for (const user of users) {
        const m = outbound(pn, user, `r${round}`, clock.now());
        for (const device_id of [1, 2]) {
          await h.producer.publish(
            'delivery.ciphertext',
            { wa_id: user, device_id },
            ciphertext(m, device_id, clock.now(), Buffer.from(`${user}.${device_id} ${m.wamid}`)),
          );
          queued.get(`${user}.${device_id}`)?.push(m.wamid);
        }
      }
    }
    await waitFor(async () => (await h.count('default', 'pending')) === 60);

    // Every other device pages with a limit of 2: limits are per device, not per batch.
    const limitOf = (i: number) => (i % 2 ? 2 : 10);
    let pages: { items: PendingItem[] }[] = [];
    const listed = await statements(async () => {
      pages = await Promise.all(
        devices.map((to, i) => h.producer.request('storage.pending', { to, limit: limitOf(i) })),
      );
    });
    devices.forEach((d, i) => {
      const items = pages[i].items;
      expect(items.map((it) => it.wamid)).toEqual(queued.get(key(d))?.slice(0, limitOf(i)));
      expect(items.every((it, k) => k === 0 || it.seq > items[k - 1].seq)).toBe(true);
      for (const it of items) {
        expect(Buffer.from(it.ciphertext, 'base64').toString()).toBe(`${key(d)} ${it.wamid}`);
      }
    });
    // 20 requests, far fewer statements: they were answered together.
    const selects = listed.filter((s) => s.includes('FROM storage.pending'));
    const audits = listed.filter((s) => s.startsWith('INSERT INTO storage.audit_log'));
    expect(selects.length).toBeGreaterThanOrEqual(1);
    expect(selects.length).toBeLessThanOrEqual(5);
    expect(audits.length).toBe(selects.length);
    // Still one audit row per request, with exactly the wamids that request was served.
    const rows = await h
      .pool()
      .query(`SELECT actor, purpose, wamids, counts FROM storage.audit_log WHERE action = 'read'`);
    expect(rows.rows).toHaveLength(20);
    expect(rows.rows.map((r) => (r.wamids as string[]).join(',')).sort()).toEqual(
      pages.map((p) => p.items.map((i) => i.wamid).join(',')).sort(),
    );
    expect(rows.rows.every((r) => r.actor === 'gateway' && r.purpose === 'retransmission')).toBe(true);
    expect(rows.rows.every((r) => r.counts.messages === r.wamids.length)).toBe(true);

    // Each device acks its first two, and also names a message of another device, which must stay.
    let removed: number[] = [];
    const acked = await statements(async () => {
      const replies = await Promise.all(
        devices.map((to, i) => {
          // Another user's device (both devices of one user share wamids).
          const other = devices[(i + 2) % devices.length];
          return h.producer.request('storage.ack', {
            to,
            wamids: [
              ...(queued.get(key(to)) ?? []).slice(0, 2),
              (queued.get(key(other)) ?? [])[2],
              'wamid.NOTQUEUEDANYWHERE',
            ],
          });
        }),
      );
      removed = replies.map((r) => r.removed);
    });
    expect(removed).toEqual(devices.map(() => 2));
    const deletes = acked.filter((s) => s.startsWith('DELETE FROM storage.pending'));
    expect(deletes.length).toBeGreaterThanOrEqual(1);
    expect(deletes.length).toBeLessThanOrEqual(5);
    const left = await h
      .pool()
      .query(`SELECT wa_id, device_id, wamid FROM storage.pending ORDER BY wa_id, device_id`);
    expect(left.rows.map((r) => `${r.wa_id}.${r.device_id} ${r.wamid}`).sort()).toEqual(
      devices.map((d) => `${key(d)} ${queued.get(key(d))?.[2]}`).sort(),
    );
  });

  it('counts a row acked twice in one batch once', async () => {
    const to = { wa_id: newWaId(), device_id: 1 };
    const m = outbound(pn, to.wa_id, 'twice', clock.now());
    await h.producer.publish('delivery.ciphertext', to, ciphertext(m, 1, clock.now()));
    await waitFor(() => h.count('default', 'pending', 'wamid = $1', [m.wamid]));
    const replies = await Promise.all(
      [0, 1].map(() => h.producer.request('storage.ack', { to, wamids: [m.wamid] })),
    );
    expect(replies.map((r) => r.removed).sort()).toEqual([0, 1]);
    expect(await h.count('default', 'pending', 'wamid = $1', [m.wamid])).toBe(0);
  });
});
