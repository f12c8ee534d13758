import { DAY_MS } from '../time';
import { waitFor } from '@relay/testing';
import type { EventPayload } from '@relay/protocol';
import { encodeJson } from '@relay/platform';
import { FakeClock, StorageHarness } from '../__fixtures__/harness';
import { ciphertext, inbound, newNumberId, newWaId, outbound, status } from '../__fixtures__/events';
import { Purger } from '../retention/purger';

type Status = EventPayload<'status.update'>;

let h: StorageHarness;
const clock = new FakeClock(new Date('2026-03-01T10:00:00Z'));
const pn = newNumberId();

beforeAll(async () => {
  h = await StorageHarness.withNumber('retx', clock, pn);
});
afterAll(() => h?.close());

async function deliver(c: EventPayload<'delivery.ciphertext'>, msgId?: string) {
  await h.producer.publish('delivery.ciphertext', { wa_id: c.to.wa_id, device_id: c.to.device_id }, c, {
    msgId,
  });
}

describe('retransmission queue', () => {
  it('queues per device in order, says sent once per wamid, wakes the gateway, serves and forgets on ack', async () => {
    const statuses = (await h.events('status.update')) as Status[];
    const wakeups = (await h.notifications('device.pending')) as { to: { device_id: number } }[];
    const user = newWaId();
    const msgs = [1, 2, 3].map((i) => outbound(pn, user, `m${i}`, clock.now()));
    for (const m of msgs) {
      // Two devices each; in order, one after the other, as crypto emits them.
      await deliver(ciphertext(m, 1, clock.now(), Buffer.from(`dev1 ${m.wamid}`)));
      await deliver(ciphertext(m, 2, clock.now(), Buffer.from(`dev2 ${m.wamid}`)));
    }
    await waitFor(async () => (await h.count('default', 'pending')) === 6);
    // JetStream redelivers: the same ciphertext again (no msgId, so JetStream does not dedupe it).
    await deliver(ciphertext(msgs[0], 1, clock.now(), Buffer.from(`dev1 ${msgs[0].wamid}`)));
    await waitFor(() => statuses.filter((s) => s.status === 'sent').length >= 3);
    await waitFor(() => wakeups.length >= 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(await h.count('default', 'pending')).toBe(6);
    const sent = statuses.filter((s) => s.status === 'sent');
    expect(sent.map((s) => s.wamid).sort()).toEqual(msgs.map((m) => m.wamid).sort());
    expect(sent.every((s) => s.recipient_id === user && s.phone_number_id === pn)).toBe(true);
    expect(new Set(wakeups.map((w) => w.to.device_id))).toEqual(new Set([1, 2]));

    const page1 = await h.producer.request('storage.pending', {
      to: { wa_id: user, device_id: 1 },
      limit: 2,
    });
    expect(page1.items.map((i) => i.wamid)).toEqual([msgs[0].wamid, msgs[1].wamid]);
    expect(Buffer.from(page1.items[0].ciphertext, 'base64').toString()).toBe(`dev1 ${msgs[0].wamid}`);
    expect(page1.items[1].seq).toBeGreaterThan(page1.items[0].seq);
    const page2 = await h.producer.request('storage.pending', {
      to: { wa_id: user, device_id: 1 },
      after_seq: page1.items[1].seq,
      limit: 10,
    });
    expect(page2.items.map((i) => i.wamid)).toEqual([msgs[2].wamid]);

    const acked = await h.producer.request('storage.ack', {
      to: { wa_id: user, device_id: 1 },
      wamids: msgs.map((m) => m.wamid),
    });
    expect(acked.removed).toBe(3);
    const after = await h.producer.request('storage.pending', {
      to: { wa_id: user, device_id: 1 },
      limit: 10,
    });
    expect(after.items).toEqual([]);
    // Device 2 still has its three.
    const dev2 = await h.producer.request('storage.pending', {
      to: { wa_id: user, device_id: 2 },
      limit: 10,
    });
    expect(dev2.items.map((i) => i.wamid)).toEqual(msgs.map((m) => m.wamid));

    // Every read of stored content is audited: actor, purpose, ids; never content.
    const audit = await h
      .pool()
      .query(
        `SELECT actor, purpose, wamids, counts FROM storage.audit_log WHERE action = 'read' ORDER BY id`,
      );
    expect(audit.rows.map((r) => [r.actor, r.purpose])).toEqual(Array(3).fill(['gateway', 'retransmission']));
    expect(audit.rows[0].wamids).toEqual([msgs[0].wamid, msgs[1].wamid]);
    expect(JSON.stringify(audit.rows)).not.toContain('dev1');
  });

  it('keeps a burst for one device in publish order under concurrent consumption', async () => {
    const user = newWaId();
    const burst = Array.from({ length: 300 }, (_, i) => outbound(pn, user, `b${i}`, clock.now()));
    await Promise.all(burst.map((m) => deliver(ciphertext(m, 1, clock.now()))));
    await waitFor(async () => (await h.count('default', 'pending', 'wa_id = $1', [user])) === 300);
    const seen: { seq: number; wamid: string }[] = [];
    let after: number | undefined;
    for (;;) {
      const page = await h.producer.request('storage.pending', {
        to: { wa_id: user, device_id: 1 },
        ...(after === undefined ? {} : { after_seq: after }),
        limit: 64,
      });
      if (page.items.length === 0) break;
      seen.push(...page.items);
      after = page.items[page.items.length - 1].seq;
    }
    expect(seen.map((i) => i.wamid)).toEqual(burst.map((m) => m.wamid));
    expect(seen.every((i, k) => k === 0 || i.seq > seen[k - 1].seq)).toBe(true);
  });

  it('keeps each reply within one NATS message: big ciphertexts come in shorter pages', async () => {
    const user = newWaId();
    const big = Array.from({ length: 5 }, (_, i) => outbound(pn, user, `big${i}`, clock.now()));
    for (const m of big) await deliver(ciphertext(m, 1, clock.now(), Buffer.alloc(200 * 1024, 7)));
    await waitFor(async () => (await h.count('default', 'pending', 'wa_id = $1', [user])) === 5);
    const first = await h.producer.request('storage.pending', {
      to: { wa_id: user, device_id: 1 },
      limit: 10,
    });
    expect(first.items.length).toBeGreaterThan(0);
    expect(first.items.length).toBeLessThan(5);
    const chars = first.items.reduce((n, i) => n + i.ciphertext.length, 0);
    expect(chars).toBeGreaterThan(256 * 1024);
    const rest = await h.producer.request('storage.pending', {
      to: { wa_id: user, device_id: 1 },
      after_seq: first.items[first.items.length - 1].seq,
      limit: 10,
    });
    const all = [...first.items, ...rest.items];
    expect(all.length).toBeLessThanOrEqual(5);
    expect(all.map((i) => i.wamid)).toEqual(big.slice(0, all.length).map((m) => m.wamid));
  });

  it('stores the ciphertext sealed, not as received', async () => {
    const m = outbound(pn, newWaId(), 'x', clock.now());
    const raw = Buffer.from('end-to-end ciphertext bytes, still sealed at rest');
    await deliver(ciphertext(m, 1, clock.now(), raw));
    await waitFor(() => h.count('default', 'pending', 'wamid = $1', [m.wamid]));
    const row = await h
      .pool()
      .query(`SELECT ciphertext_sealed FROM storage.pending WHERE wamid = $1`, [m.wamid]);
    const sealed = row.rows[0].ciphertext_sealed as Buffer;
    expect(sealed.includes(raw)).toBe(false);
    expect(sealed.length).toBe(raw.length + 29);
  });

  it('expires undelivered messages at the retention limit and tells the business they failed', async () => {
    const statuses = (await h.events('status.update')) as Status[];
    const user = newWaId();
    const lost = outbound(pn, user, 'never delivered', clock.now());
    const reached = outbound(pn, user, 'delivered to device 1 only', clock.now());
    await deliver(ciphertext(lost, 1, clock.now()));
    await deliver(ciphertext(reached, 1, clock.now()));
    await deliver(ciphertext(reached, 2, clock.now()));
    await h.producer.publish(
      'status.update',
      { phone_number_id: pn },
      status(reached, 'delivered', clock.now()),
    );
    await waitFor(async () => (await h.count('default', 'pending', 'wa_id = $1', [user])) === 3);
    await waitFor(() =>
      h.count('default', 'message_statuses', `wamid = $1 AND status = 'delivered'`, [reached.wamid]),
    );

    clock.advance(30 * DAY_MS - 60_000);
    await h.app?.get(Purger).runOnce();
    expect(await h.count('default', 'pending', 'wa_id = $1', [user])).toBe(3);
    clock.advance(120_000);
    await h.app?.get(Purger).runOnce();
    expect(await h.count('default', 'pending', 'wa_id = $1', [user])).toBe(0);
    await waitFor(() => statuses.some((s) => s.status === 'failed' && s.wamid === lost.wamid));
    await new Promise((r) => setTimeout(r, 200));
    const mine = new Set([lost.wamid, reached.wamid]);
    const failed = statuses.filter((s) => s.status === 'failed' && mine.has(s.wamid));
    expect(failed.map((s) => s.wamid)).toEqual([lost.wamid]);
    expect(failed[0].errors?.[0]).toMatchObject({ code: 131026, title: 'Message undeliverable' });
    expect(failed[0].recipient_id).toBe(user);
    // Nothing expired is served either.
    const none = await h.producer.request('storage.pending', {
      to: { wa_id: user, device_id: 2 },
      limit: 10,
    });
    expect(none.items).toEqual([]);
  });

  it('drops bad input with a clear error and keeps working', async () => {
    h.nc.publish(`${h.root}.v1.delivery.ciphertext.123456789.1`, encodeJson({ wamid: 'nope' }));
    h.nc.publish(`${h.root}.v1.inbound.message.${pn}`, Buffer.from('{not json'));
    await expect(
      h.producer.nc.request(`${h.root}.v1.rpc.storage.pending`, encodeJson({ to: { wa_id: 'x' } })),
    ).resolves.toBeDefined();
    const reply = await h.producer.nc.request(`${h.root}.v1.rpc.storage.pending`, encodeJson({ limit: 0 }));
    expect(JSON.parse(Buffer.from(reply.data).toString())).toMatchObject({
      ok: false,
      error: { code: 'invalid_payload' },
    });
    await expect(
      h.producer.request('storage.ack', { to: { wa_id: newWaId(), device_id: 1 }, wamids: [] }),
    ).rejects.toThrow(/wamids/);
    // Still alive and idempotent: the same inbound message twice is one row.
    const m = inbound(pn, newWaId(), 'hello twice', clock.now());
    await h.producer.publish('inbound.message', { phone_number_id: pn }, m);
    await h.producer.publish('inbound.message', { phone_number_id: pn }, m);
    await waitFor(() => h.count('default', 'messages', 'wamid = $1', [m.wamid]));
    await new Promise((r) => setTimeout(r, 300));
    expect(await h.count('default', 'messages', 'wamid = $1', [m.wamid])).toBe(1);
    // Statuses too: redelivered statuses and crypto's failure report are kept once each.
    const out = outbound(pn, m.from.wa_id, 'status me', clock.now());
    await h.producer.publish('status.update', { phone_number_id: pn }, status(out, 'read', clock.now()));
    await h.producer.publish('status.update', { phone_number_id: pn }, status(out, 'read', clock.now()));
    const failure = {
      wamid: out.wamid,
      phone_number_id: pn,
      to: out.to,
      reason: 'no_devices' as const,
      detail: 'no registered devices',
      failed_at: clock.now().toISOString(),
    };
    await h.producer.publish('outbound.failure', { phone_number_id: pn }, failure);
    await h.producer.publish('outbound.failure', { phone_number_id: pn }, failure);
    await waitFor(() =>
      h.count('default', 'message_statuses', `wamid = $1 AND status = 'failed'`, [out.wamid]),
    );
    await new Promise((r) => setTimeout(r, 300));
    const history = await h
      .pool()
      .query(`SELECT status, error_code FROM storage.message_statuses WHERE wamid = $1 ORDER BY status`, [
        out.wamid,
      ]);
    expect(history.rows).toEqual([
      { status: 'failed', error_code: 131026 },
      { status: 'read', error_code: null },
    ]);
    const unknown = await h.producer.request('storage.pending', {
      to: { wa_id: newWaId(), device_id: 9 },
      limit: 5,
    });
    expect(unknown.items).toEqual([]);
  });
});
