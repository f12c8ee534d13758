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
import { migrateExtra } from '../data-source';
import { StorageDatabases } from '../db/storage-databases';

const DATA_TABLES = ['messages', 'message_statuses', 'pending', 'contacts', 'data_keys'];
const DBS = ['default', 'DE', 'IN'];
const clock = new FakeClock(new Date('2026-06-01T12:00:00Z'));
let h: StorageHarness;

/** Rows of one number per database, over every table that holds message data or its keys. */
async function footprint(pn: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const db of DBS) {
    let n = 0;
    for (const t of DATA_TABLES) {
      n += await h.count(db, t, t === 'data_keys' ? 'tenant = $1' : 'phone_number_id = $1', [pn]);
    }
    out[db] = n;
  }
  return out;
}

async function converse(pn: string, user: string, text: string) {
  const inMsg = inbound(pn, user, text, clock.now());
  const out = outbound(pn, user, `re: ${text}`, clock.now());
  await h.producer.publish('inbound.message', { phone_number_id: pn }, inMsg);
  await h.producer.publish('outbound.request', { phone_number_id: pn }, out);
  await h.producer.publish(
    'delivery.ciphertext',
    { wa_id: user, device_id: 1 },
    ciphertext(out, 1, clock.now()),
  );
  await h.producer.publish('status.update', { phone_number_id: pn }, status(out, 'delivered', clock.now()));
  return { inMsg, out };
}

const minutesAgo = (m: number) => new Date(clock.now().getTime() - m * 60_000);

beforeAll(async () => {
  // Routes cached longer than any test step: only the change notification can drop them in time.
  h = await StorageHarness.create('regions', {
    regions: ['DE', 'IN'],
    env: { NUMBER_ROUTE_CACHE_MS: '600000' },
  });
  await h.start(clock);
});
afterAll(() => h?.close());

describe('Local Storage (data residency)', () => {
  it('migrates every regional database (tools/migrate.mjs calls migrateExtra)', async () => {
    const lines: string[] = [];
    await migrateExtra(h.env, (l) => lines.push(l));
    expect(lines).toEqual(['storage region DE: up to date', 'storage region IN: up to date']);
  });

  it('reports every regional database in /ready', async () => {
    const res = await fetch(`${await h.app?.getUrl()}/ready`);
    const body = (await res.json()) as { checks: Record<string, string> };
    expect(res.status).toBe(200);
    expect(body.checks).toMatchObject({ database: 'ok', database_DE: 'ok', database_IN: 'ok' });
  });

  it("keeps a regional number's message data in its region's database and in no other", async () => {
    const de = newNumberId();
    const plain = newNumberId();
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: de },
      registered(de, minutesAgo(10), { region: 'DE' }),
    );
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: plain },
      registered(plain, minutesAgo(10)),
    );
    await waitFor(async () => (await h.count('default', 'numbers')) === 2);
    const user = newWaId();
    await converse(de, user, 'Guten Tag');
    await converse(plain, user, 'Hello');
    // 2 messages + 2 statuses (sent, delivered) + 1 pending + 1 contact + 1 data key
    await waitFor(async () => (await footprint(de)).DE === 7 && (await footprint(plain)).default === 7);
    expect(await footprint(de)).toEqual({ default: 0, DE: 7, IN: 0 });
    expect(await footprint(plain)).toEqual({ default: 7, DE: 0, IN: 0 });
    // The default database keeps only the routing row of the regional number.
    const route = await h.pool().query(`SELECT region FROM storage.numbers WHERE phone_number_id = $1`, [de]);
    expect(route.rows).toEqual([{ region: 'DE' }]);
  });

  it("reuses a number's route across batches, and drops it at once when another replica changes the number", async () => {
    const pn = newNumberId();
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: pn },
      registered(pn, minutesAgo(10)),
    );
    await waitFor(() => h.count('default', 'numbers', 'phone_number_id = $1', [pn]));
    const write = async (text: string, db: string) => {
      const m = inbound(pn, newWaId(), text, clock.now());
      await h.producer.publish('inbound.message', { phone_number_id: pn }, m);
      await waitFor(() => h.count(db, 'messages', 'wamid = $1', [m.wamid]));
    };
    await write('first', 'default');
    const ds = h.app?.get(StorageDatabases).defaultDb.ds;
    if (!ds) throw new Error('storage is not running');
    const spy = jest.spyOn(ds, 'query');
    try {
      await write('second', 'default');
      expect(spy.mock.calls.filter(([sql]) => sql.includes('FROM storage.numbers'))).toEqual([]);
    } finally {
      spy.mockRestore();
    }
    // Another replica applies a move (its registry changes the row and announces it); this replica
    // must not keep writing to the old database for the cache's lifetime.
    await h.pool().query(
      `WITH moved AS (UPDATE storage.numbers SET region = 'DE' WHERE phone_number_id = $1 RETURNING phone_number_id)
       SELECT pg_notify('storage_numbers', phone_number_id) FROM moved`,
      [pn],
    );
    await new Promise((r) => setTimeout(r, 100));
    await write('after the move', 'DE');
  });

  it('refuses a region change of a registered number; deregister then register moves it', async () => {
    const pn = newNumberId();
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: pn },
      registered(pn, minutesAgo(10), { region: 'DE' }),
    );
    await waitFor(() => h.count('default', 'numbers', 'phone_number_id = $1', [pn]));
    const user = newWaId();
    const first = await converse(pn, user, 'before the move');

    // Registered again with another region, without deregistering: refused, with the reason audited.
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: pn },
      registered(pn, minutesAgo(5), { region: 'IN' }),
    );
    await waitFor(() =>
      h.count('default', 'audit_log', `action = 'region_change_refused' AND phone_number_id = $1`, [pn]),
    );
    const refusal = await h
      .pool()
      .query(
        `SELECT purpose FROM storage.audit_log WHERE action = 'region_change_refused' AND phone_number_id = $1`,
        [pn],
      );
    expect(refusal.rows[0].purpose).toMatch(/registered with data_localization_region DE; deregister it/);
    const stays = await converse(pn, user, 'still in DE');
    await waitFor(() => h.count('DE', 'messages', 'wamid = $1', [stays.out.wamid]));
    expect(await h.count('IN', 'messages', 'phone_number_id = $1', [pn])).toBe(0);

    // Cloud API's way: deregister, then register with the new region.
    await h.producer.publish(
      'business.number_deregistered',
      { phone_number_id: pn },
      {
        phone_number_id: pn,
        waba_id: '777',
        at: minutesAgo(2).toISOString(),
      },
    );
    await waitFor(() => h.count('default', 'numbers', 'phone_number_id = $1 AND NOT registered', [pn]));
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: pn },
      registered(pn, minutesAgo(1), { region: 'IN' }),
    );
    await waitFor(() =>
      h.count('default', 'numbers', `phone_number_id = $1 AND region = 'IN' AND registered`, [pn]),
    );
    // Across databases a device's queue is ordered by the time its messages were queued.
    clock.advance(1000);
    const after = await converse(pn, user, 'now in India');
    await waitFor(() => h.count('IN', 'pending', 'wamid = $1', [after.out.wamid]));
    expect(await h.count('DE', 'messages', 'wamid = $1', [after.out.wamid])).toBe(0);
    expect(await h.count('default', 'messages', 'phone_number_id = $1', [pn])).toBe(0);

    // The device's queue spans both regions and comes back in publish order; ack clears both.
    const q = await h.producer.request('storage.pending', { to: { wa_id: user, device_id: 1 }, limit: 10 });
    expect(q.items.map((i) => i.wamid)).toEqual([first.out.wamid, stays.out.wamid, after.out.wamid]);
    const acked = await h.producer.request('storage.ack', {
      to: { wa_id: user, device_id: 1 },
      wamids: q.items.map((i) => i.wamid),
    });
    expect(acked.removed).toBe(3);
    expect(await h.count('DE', 'audit_log', `action = 'read'`)).toBeGreaterThan(0);
    expect(await h.count('IN', 'audit_log', `action = 'read'`)).toBe(1);
  });

  it('a new registration that overtakes its deregistration waits for it instead of being refused', async () => {
    const pn = newNumberId();
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: pn },
      registered(pn, minutesAgo(10), { region: 'DE' }),
    );
    await waitFor(() => h.count('default', 'numbers', 'phone_number_id = $1', [pn]));
    // The re-registration (a few seconds old) is consumed before the deregistration that preceded it.
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: pn },
      registered(pn, clock.now(), { region: 'IN' }),
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(await h.count('default', 'numbers', `phone_number_id = $1 AND region = 'DE'`, [pn])).toBe(1);
    await h.producer.publish(
      'business.number_deregistered',
      { phone_number_id: pn },
      {
        phone_number_id: pn,
        waba_id: '777',
        at: minutesAgo(1).toISOString(),
      },
    );
    await waitFor(() =>
      h.count('default', 'numbers', `phone_number_id = $1 AND region = 'IN' AND registered`, [pn]),
    );
    expect(
      await h.count('default', 'audit_log', `action = 'region_change_refused' AND phone_number_id = $1`, [
        pn,
      ]),
    ).toBe(0);
  });

  it('never writes a number pinned to an unconfigured region anywhere else', async () => {
    const pn = newNumberId();
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: pn },
      registered(pn, minutesAgo(10), { region: 'BR' }),
    );
    await waitFor(() => h.count('default', 'numbers', 'phone_number_id = $1', [pn]));
    const m = inbound(pn, newWaId(), 'must stay in Brazil', clock.now());
    await h.producer.publish('inbound.message', { phone_number_id: pn }, m);
    const probe = inbound(newNumberId(), newWaId(), 'probe', clock.now());
    await h.producer.publish('inbound.message', { phone_number_id: probe.phone_number_id }, probe);
    await waitFor(() => h.count('default', 'messages', 'wamid = $1', [probe.wamid]));
    await new Promise((r) => setTimeout(r, 500));
    for (const db of DBS) expect(await h.count(db, 'messages', 'wamid = $1', [m.wamid])).toBe(0);
    // Not acknowledged either: JetStream keeps it for when the region is configured.
    const jsm = await h.nc.jetstreamManager();
    const info = await jsm.consumers.info(`${h.root.toUpperCase()}_INBOUND`, 'storage-inbound');
    expect(info.num_ack_pending + info.num_pending).toBeGreaterThan(0);
  });
});
