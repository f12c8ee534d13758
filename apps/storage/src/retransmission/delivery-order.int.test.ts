import { SubjectSequencer } from '@relay/platform';
import { streamName, type EventPayload } from '@relay/protocol';
import { waitFor } from '@relay/testing';
import { FakeClock, StorageHarness } from '../__fixtures__/harness';
import { ciphertext, newNumberId, newWaId, outbound } from '../__fixtures__/events';

// A device's queue follows the DELIVERY stream order even when a ciphertext is held by a storage
// process that died: the test plays that process (it pulls one message from storage's durable consumer
// and keeps it unacknowledged) while the real storage service queues the later ones.
let h: StorageHarness;
const clock = new FakeClock(new Date('2026-03-01T10:00:00Z'));
const pn = newNumberId();

beforeAll(async () => {
  h = await StorageHarness.withNumber('dlvorder', clock, pn);
});
afterAll(() => h?.close());

type Deliver = (c: EventPayload<'delivery.ciphertext'>) => Promise<unknown>;
// Unstamped (as an older crypto published) and stamped with each device's previous ciphertext (as
// crypto publishes now, so storage reads the stream back only when the chain to its cursor is broken).
const plain: Deliver = (c) =>
  h.producer.publish('delivery.ciphertext', { wa_id: c.to.wa_id, device_id: c.to.device_id }, c);
const stamped = (): Deliver => {
  const seq = new SubjectSequencer(h.producer, 'delivery.ciphertext');
  return (c) => seq.publish({ wa_id: c.to.wa_id, device_id: c.to.device_id }, c);
};

it.each([
  ['unstamped', () => plain],
  ['stamped', stamped],
])('queues a ciphertext held by another process before the later ones, once (%s)', async (_, make) => {
  const deliver = make();
  const user = newWaId();
  const to = { wa_id: user, device_id: 1 };
  const msgs = [0, 1, 2, 3].map((i) => outbound(pn, user, `m${i}`, clock.now()));
  const cts = msgs.map((m) => ciphertext(m, 1, clock.now(), Buffer.from(`ct ${m.wamid}`)));
  const queued = () => h.count('default', 'pending', 'wa_id = $1', [user]);

  await deliver(cts[0]);
  await waitFor(async () => (await queued()) === 1);
  // m1 is taken by a storage process that then stops answering (here: the test, holding it unacked).
  await h.stop();
  await deliver(cts[1]);
  const consumer = await h.nc.jetstream().consumers.get(streamName(h.root, 'DELIVERY'), 'storage-delivery');
  const held = await consumer.next({ expires: 5000 });
  expect(held?.subject).toBe(`${h.root}.v1.delivery.ciphertext.${user}.1`);
  await h.start(clock);
  await deliver(cts[2]);
  await deliver(cts[3]);
  await waitFor(async () => (await queued()) === 4);
  const page = await h.producer.request('storage.pending', { to, limit: 10 });
  expect(page.items.map((i) => i.wamid)).toEqual(msgs.map((m) => m.wamid));
  expect(Buffer.from(page.items[1].ciphertext, 'base64').toString()).toBe(`ct ${msgs[1].wamid}`);

  // The device acknowledges all four; then the held message is redelivered: it is not queued again.
  expect((await h.producer.request('storage.ack', { to, wamids: msgs.map((m) => m.wamid) })).removed).toBe(4);
  held?.nak();
  await waitFor(async () => {
    const info = await h.nc
      .jetstream()
      .consumers.get(streamName(h.root, 'DELIVERY'), 'storage-delivery')
      .then((c) => c.info());
    return info.num_ack_pending === 0 && info.num_pending === 0;
  }, 15_000);
  expect(await queued()).toBe(0);
});
