import type { EventName, EventPayload } from '@relay/protocol';
import type { NatsBus } from '@relay/platform';
import type { OutboxEvent } from '../store/outbox.repository';

/**
 * Publishes outbox events with their deterministic msgIds: JetStream drops a re-publish inside its
 * duplicate window and every consumer dedupes by the same id after it.
 */
export async function publishAll(bus: NatsBus, events: OutboxEvent[]): Promise<void> {
  await Promise.all(
    events.map((e) => {
      const name = e.name as EventName;
      return bus.publish(
        name,
        e.tokens as Parameters<NatsBus['publish']>[1],
        e.payload as EventPayload<typeof name>,
        { msgId: e.msgId },
      );
    }),
  );
}

/** publishAll, retried every 100 ms until it succeeds or `forMs` has passed (then the last error). */
export async function publishUntilDone(bus: NatsBus, events: OutboxEvent[], forMs: number): Promise<void> {
  const until = Date.now() + forMs;
  for (;;) {
    try {
      return await publishAll(bus, events);
    } catch (err) {
      if (Date.now() >= until) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
