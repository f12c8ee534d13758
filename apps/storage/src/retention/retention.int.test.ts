import { METRICS_REGISTRY } from '@relay/platform';
import { streamName } from '@relay/protocol';
import { waitFor } from '@relay/testing';
import type { Registry } from 'prom-client';
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
import { DAY_MS } from '../time';
import { Purger } from './purger';

const TABLES = ['messages', 'message_statuses', 'pending', 'contacts'];
const DBS = ['default', 'DE'];
const t0 = new Date('2026-05-01T08:00:00Z');
const clock = new FakeClock(t0);
let h: StorageHarness;

const purge = () => h.app?.get(Purger).runOnce();
const at = (days: number) => new Date(t0.getTime() + days * DAY_MS);

async function rowsAbout(waId: string): Promise<number> {
  let n = 0;
  for (const db of DBS) for (const t of TABLES) n += await h.count(db, t, 'wa_id = $1', [waId]);
  return n;
}

async function oldestAge(): Promise<Record<string, number>> {
  const registry = h.app?.get<Registry>(METRICS_REGISTRY);
  const metric = await registry?.getSingleMetric('relay_storage_oldest_message_age_seconds')?.get();
  return Object.fromEntries((metric?.values ?? []).map((v) => [String(v.labels.db), v.value]));
}

/** One conversation: an inbound message, an outbound reply queued for an offline device, statuses. */
async function conversation(pn: string, user: string, when: Date) {
  const inMsg = inbound(pn, user, 'hi from user', when);
  const out = outbound(pn, user, 'hi from business', when);
  await h.producer.publish('inbound.message', { phone_number_id: pn }, inMsg);
  await h.producer.publish('outbound.request', { phone_number_id: pn }, out);
  await h.producer.publish('delivery.ciphertext', { wa_id: user, device_id: 1 }, ciphertext(out, 1, when));
  await h.producer.publish('status.update', { phone_number_id: pn }, status(out, 'delivered', when));
  return { inMsg, out };
}

beforeAll(async () => {
  h = await StorageHarness.create('retention', { regions: ['DE'] });
  await h.start(clock);
});
afterAll(() => h?.close());

describe('retention, enforced (clock-controlled)', () => {
  it('content streams keep messages no longer than the retention limit', async () => {
    const jsm = await h.nc.jetstreamManager();
    for (const key of ['INBOUND', 'OUTBOUND', 'DELIVERY', 'DEVICE_ENVELOPES'] as const) {
      const info = await jsm.streams.info(streamName(h.root, key));
      expect(info.config.max_age).toBeLessThanOrEqual(30 * DAY_MS * 1e6);
    }
  });

  it('deletes messages older than the retention from every table and region; the oldest-message metric follows', async () => {
    const local = newNumberId();
    const regional = newNumberId();
    await h.producer.publish('business.number_registered', { phone_number_id: local }, registered(local, t0));
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: regional },
      registered(regional, t0, { region: 'DE' }),
    );
    await waitFor(async () => (await h.count('default', 'numbers')) === 2);
    const u1 = newWaId();
    const u2 = newWaId();
    await conversation(local, u1, t0);
    await conversation(regional, u2, t0);
    await waitFor(async () => (await rowsAbout(u1)) === 6 && (await rowsAbout(u2)) === 6);

    clock.set(at(10));
    expect(await oldestAge()).toEqual({ default: 10 * 86400, DE: 10 * 86400 });
    clock.set(new Date(at(30).getTime() - 60_000));
    await purge();
    expect(await rowsAbout(u1)).toBe(6);
    expect(await rowsAbout(u2)).toBe(6);

    clock.set(new Date(at(30).getTime() + 60_000));
    // A backlog message that was already past retention when it reached storage goes too.
    const late = inbound(local, u1, 'stale', at(-1));
    await h.producer.publish('inbound.message', { phone_number_id: local }, late);
    await waitFor(() => h.count('default', 'messages', 'wamid = $1', [late.wamid]));
    await purge();
    for (const db of DBS) {
      for (const t of ['messages', 'message_statuses', 'pending', 'contacts', 'device_counters']) {
        expect(await h.count(db, t)).toBe(0);
      }
    }
    expect(await oldestAge()).toEqual({ default: 0, DE: 0 });
    const purged = await h
      .pool('DE')
      .query(`SELECT actor, counts FROM storage.audit_log WHERE action = 'purge'`);
    expect(purged.rows[0]).toMatchObject({
      actor: 'storage',
      counts: { messages: 2, message_statuses: 2, pending: 1 },
    });
  });

  it('honours a shorter per-number retention, also for data stored before it was shortened', async () => {
    clock.set(at(100));
    const short = newNumberId();
    const normal = newNumberId();
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: short },
      registered(short, clock.now(), { retentionDays: 7 }),
    );
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: normal },
      registered(normal, clock.now()),
    );
    await waitFor(() => h.count('default', 'numbers', 'phone_number_id = $1', [normal]));
    const a = newWaId();
    const b = newWaId();
    await conversation(short, a, clock.now());
    await conversation(normal, b, clock.now());
    await waitFor(async () => (await rowsAbout(a)) === 6 && (await rowsAbout(b)) === 6);

    clock.set(at(107 + 1 / 24));
    await purge();
    expect(await h.count('default', 'messages', 'phone_number_id = $1', [short])).toBe(0);
    expect(await h.count('default', 'pending', 'phone_number_id = $1', [short])).toBe(0);
    expect(await h.count('default', 'messages', 'phone_number_id = $1', [normal])).toBe(2);

    // The business shortens the other number's retention to 5 days: its 7-day-old data goes now.
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: normal },
      registered(normal, clock.now(), { retentionDays: 5 }),
    );
    await waitFor(() =>
      h.count('default', 'numbers', 'phone_number_id = $1 AND retention_days = 5', [normal]),
    );
    await purge();
    expect(await h.count('default', 'messages', 'phone_number_id = $1', [normal])).toBe(0);
    expect(await h.count('default', 'message_statuses', 'phone_number_id = $1', [normal])).toBe(0);
  });

  it('deletes a user identifier 30 days after the last status update of their messages', async () => {
    clock.set(at(200));
    const pn = newNumberId();
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: pn },
      registered(pn, clock.now(), { region: 'DE' }),
    );
    await waitFor(() => h.count('default', 'numbers', 'phone_number_id = $1', [pn]));
    const user = newWaId();
    const { out } = await conversation(pn, user, clock.now());
    await waitFor(async () => (await rowsAbout(user)) === 6);
    // The user reads the reply 20 days later: that is the last status update.
    clock.set(at(220));
    await h.producer.publish('status.update', { phone_number_id: pn }, status(out, 'read', at(220)));
    await waitFor(() => h.count('DE', 'message_statuses', `wamid = $1 AND status = 'read'`, [out.wamid]));

    clock.set(at(231));
    await purge();
    // Message data is past its 30 days; the identifier is still within 30 days of the last update.
    expect(await h.count('DE', 'messages', 'wa_id = $1', [user])).toBe(0);
    expect(await h.count('DE', 'contacts', 'wa_id = $1', [user])).toBe(1);

    clock.set(new Date(at(250).getTime() - 60_000));
    await purge();
    expect(await h.count('DE', 'contacts', 'wa_id = $1', [user])).toBe(1);
    clock.set(new Date(at(250).getTime() + 60_000));
    await purge();
    expect(await rowsAbout(user)).toBe(0);
    for (const db of DBS) expect(await h.dump(db)).not.toContain(user);
  });
});
