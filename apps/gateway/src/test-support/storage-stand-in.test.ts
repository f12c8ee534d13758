/**
 * Stand-in for the storage service (built separately): the per-device retransmission queue in memory,
 * answering storage.pending / storage.ack on real NATS and waking the gateway with device.pending,
 * exactly as the contract in libs/protocol describes.
 */
import type { NatsBus } from '@relay/platform';
import type { PendingItem } from '@relay/protocol';

type Item = PendingItem;

const REPLY_BUDGET = 700 * 1024;

export class StorageStandIn {
  readonly queues = new Map<string, Item[]>();
  readonly acked: string[] = [];
  pendingCalls = 0;
  private seq = 0;

  constructor(private readonly bus: NatsBus) {}

  start(): this {
    this.bus.respond('storage.pending', async (req) => {
      this.pendingCalls++;
      const q = this.queues.get(key(req.to.wa_id, req.to.device_id)) ?? [];
      const items = q.filter((i) => req.after_seq === undefined || i.seq > req.after_seq).slice(0, req.limit);
      // Like the real service must, keep a reply within NATS's 1 MiB message limit (at least one item).
      let bytes = 0;
      return { items: items.filter((i, n) => (bytes += i.ciphertext.length) <= REPLY_BUDGET || n === 0) };
    });
    this.bus.respond('storage.ack', async (req) => {
      const k = key(req.to.wa_id, req.to.device_id);
      const q = this.queues.get(k) ?? [];
      const keep = q.filter((i) => !req.wamids.includes(i.wamid));
      this.queues.set(k, keep);
      this.acked.push(...req.wamids);
      return { removed: q.length - keep.length };
    });
    return this;
  }

  /** Queues a message for a device and wakes the gateway that holds it. */
  enqueue(
    to: { wa_id: string; device_id: number },
    item: Omit<Item, 'seq' | 'created_at'> & { created_at?: string },
    notify = true,
  ): void {
    const k = key(to.wa_id, to.device_id);
    const q = this.queues.get(k) ?? [];
    q.push({ ...item, seq: ++this.seq, created_at: item.created_at ?? new Date().toISOString() });
    this.queues.set(k, q);
    if (notify) this.bus.notify('device.pending', to, { to });
  }

  queued(to: { wa_id: string; device_id: number }): Item[] {
    return this.queues.get(key(to.wa_id, to.device_id)) ?? [];
  }
}

const key = (waId: string, deviceId: number) => `${waId}.${deviceId}`;
