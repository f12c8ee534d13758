import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, CLOCK, NatsBus, type Clock } from '@relay/platform';
import type { DeviceCiphertext } from '@relay/protocol';
import type { StorageConfig } from '../config';
import { BatchWriter } from '../db/batch-writer';
import { retrying, type StoreDb } from '../db/store-db';
import { NumberDirectory, writeGroups, type RoutedGroup } from '../numbers/number-directory';
import { effectiveTime, plusDays } from '../time';
import { QUEUE_SQL } from './device-seq';

export const pendingAad = (wamid: string, waId: string, deviceId: number) =>
  `pending:${wamid}:${waId}:${deviceId}`;

export interface QueuedCiphertext {
  ciphertext: DeviceCiphertext;
  /** DELIVERY stream sequence: the order crypto published in, used to order a batch. */
  streamSeq: number;
}

/**
 * The retransmission queue's write side: stores each device's ciphertext (sealed, even though it is
 * end-to-end encrypted), then tells the business the message was sent (once per wamid) and wakes the
 * gateway holding the device.
 */
@Injectable()
export class PendingWriter {
  private readonly writer: BatchWriter<QueuedCiphertext>;
  private readonly announcer: BatchWriter<DeviceCiphertext>;

  constructor(
    @Inject(NumberDirectory) private readonly directory: NumberDirectory,
    @Inject(NatsBus) private readonly bus: NatsBus,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_CONFIG) config: StorageConfig,
  ) {
    this.writer = new BatchWriter((items) => this.flush(items), {
      maxBatch: config.WRITE_BATCH_SIZE,
      // One batch at a time: a process queues ciphertexts in the order it received them.
      maxConcurrent: 1,
    });
    // Announcing (JetStream round trips) runs beside the next store batch, not in front of it.
    this.announcer = new BatchWriter((items) => this.announceAll(items), {
      maxBatch: config.WRITE_BATCH_SIZE,
      maxConcurrent: 2,
    });
  }

  /** Resolves once the ciphertext is queued durably and the business and gateway were told. */
  async write(ciphertext: DeviceCiphertext, streamSeq: number): Promise<void> {
    await this.writer.add({ ciphertext, streamSeq });
    await this.announcer.add(ciphertext);
  }

  private async flush(items: QueuedCiphertext[]): Promise<(Error | undefined)[]> {
    const grouped = await this.directory.group(items, (q) => q.ciphertext.phone_number_id);
    return writeGroups(grouped, (g) => this.store(g));
  }

  private async announceAll(items: DeviceCiphertext[]): Promise<(Error | undefined)[]> {
    const grouped = await this.directory.group(items, (c) => c.phone_number_id);
    return writeGroups(grouped, (g) =>
      this.announce(
        g.db,
        g.entries.map((e) => e.item),
      ),
    );
  }

  private async store(g: RoutedGroup<QueuedCiphertext>): Promise<void> {
    const now = this.clock.now();
    const unique = new Map(
      g.entries.map(({ item: { ciphertext: c, streamSeq }, retentionDays }) => [
        `${c.to.wa_id}|${c.to.device_id}|${c.wamid}`,
        { item: c, streamSeq, retentionDays },
      ]),
    );
    const entries = [...unique.values()].sort((a, b) => a.streamSeq - b.streamSeq);
    const sealed: Buffer[] = [];
    for (const { item } of entries) {
      sealed.push(
        await g.db.keys.encrypt(
          item.phone_number_id,
          Buffer.from(item.ciphertext, 'base64'),
          pendingAad(item.wamid, item.to.wa_id, item.to.device_id),
        ),
      );
    }
    const created = entries.map((e) => effectiveTime(e.item.created_at, now));
    // One statement, atomic on its own: counters and rows in one round trip, no BEGIN/COMMIT.
    await retrying(() =>
      g.db.ds.query(QUEUE_SQL, [
        entries.map((e) => e.item.to.wa_id),
        entries.map((e) => e.item.to.device_id),
        entries.map((e) => e.item.wamid),
        entries.map((e) => e.item.phone_number_id),
        entries.map((e) => e.item.type),
        created,
        entries.map((e, i) => plusDays(created[i], e.retentionDays)),
        sealed,
        now.getTime() * 1000,
        now,
      ]),
    );
  }

  /** After commit: 'sent' once per wamid (marked only after JetStream stored it), then wake-ups. */
  private async announce(db: StoreDb, items: DeviceCiphertext[]): Promise<void> {
    const first = new Map(items.map((c) => [c.wamid, c]));
    const marked = (await db.ds.query(
      `SELECT wamid FROM storage.status_marks WHERE status = 'sent' AND wamid = ANY($1)`,
      [[...first.keys()]],
    )) as { wamid: string }[];
    for (const m of marked) first.delete(m.wamid);
    const now = this.clock.now();
    await Promise.all(
      [...first.values()].map((c) =>
        this.bus.publish(
          'status.update',
          { phone_number_id: c.phone_number_id },
          {
            wamid: c.wamid,
            phone_number_id: c.phone_number_id,
            recipient_id: c.to.wa_id,
            status: 'sent',
            timestamp: now.toISOString(),
          },
          { msgId: `sent.${c.wamid}` },
        ),
      ),
    );
    if (first.size > 0) {
      await db.ds.query(
        `INSERT INTO storage.status_marks (wamid, status, created_at) SELECT w, 'sent', $2 FROM unnest($1::text[]) AS w ON CONFLICT DO NOTHING`,
        [[...first.keys()], now],
      );
    }
    const devices = new Map(items.map((c) => [`${c.to.wa_id}|${c.to.device_id}`, c.to]));
    for (const to of devices.values()) {
      this.bus.notify('device.pending', { wa_id: to.wa_id, device_id: to.device_id }, { to });
    }
  }
}
