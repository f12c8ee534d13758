import type { MessageStatusValue } from '@relay/protocol';

const RANK: Record<MessageStatusValue, number> = { sent: 1, delivered: 2, read: 3, failed: 4 };

/**
 * Which statuses to emit for an incoming one, given the last emitted, so a business always sees
 * sent -> delivered -> read (delivered may be skipped, as Meta does when a message is read at once),
 * or sent? -> failed. Duplicates and regressions (one device's 'delivered' after another's 'read')
 * emit nothing; a 'delivered' or 'read' that overtook 'sent' brings a 'sent' before it.
 */
export function statusesToEmit(
  last: MessageStatusValue | null,
  incoming: MessageStatusValue,
): MessageStatusValue[] {
  if (last === 'failed') return [];
  if (incoming === 'failed') return last === null || last === 'sent' ? ['failed'] : [];
  if (last !== null && RANK[incoming] <= RANK[last]) return [];
  if (last === null && incoming !== 'sent') return ['sent', incoming];
  return [incoming];
}
