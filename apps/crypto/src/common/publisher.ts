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

/**
 * Where a processor's events go: the bus, or in a test a stand-in that fails like NATS does while it
 * restarts (the processors are otherwise unchanged).
 */
export interface EventPublisher {
  publish(events: OutboxEvent[]): Promise<void>;
}

export const busPublisher = (bus: NatsBus): EventPublisher => ({
  publish: (events) => publishAll(bus, events),
});
