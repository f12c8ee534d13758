import type { EventName, EventPayload } from '@relay/protocol';
import { SubjectSequencer, type NatsBus } from '@relay/platform';
import type { OutboxEvent } from '../store/outbox.repository';

/**
 * Publishes outbox events with their deterministic msgIds: JetStream drops a re-publish inside its
 * duplicate window and every consumer dedupes by the same id after it.
 */
export async function publishAll(
  bus: NatsBus,
  events: OutboxEvent[],
  deliveries?: SubjectSequencer<'delivery.ciphertext'>,
): Promise<void> {
  await Promise.all(
    events.map((e) => {
      const name = e.name as EventName;
      if (deliveries && e.name === 'delivery.ciphertext')
        return deliveries.publish(
          e.tokens as Parameters<typeof deliveries.publish>[0],
          e.payload as EventPayload<'delivery.ciphertext'>,
          { msgId: e.msgId },
        );
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

/**
 * A device's ciphertexts go out one after another, each stamped with its predecessor on the device's
 * DELIVERY subject, so storage reads that subject back only when one is really missing.
 */
export const busPublisher = (bus: NatsBus): EventPublisher => {
  const deliveries = new SubjectSequencer(bus, 'delivery.ciphertext');
  return { publish: (events) => publishAll(bus, events, deliveries) };
};
