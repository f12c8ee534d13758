import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, APP_LOGGER, CLOCK, NatsBus, chainsBack, type Clock } from '@relay/platform';
import type { Logger } from 'pino';
import type { DeviceCiphertext } from '@relay/protocol';
import type { StorageConfig } from '../config';
import { BatchWriter } from '../db/batch-writer';
import { inTx, rowsOf, type StoreDb } from '../db/store-db';
import { NumberDirectory, writeGroups, type RoutedGroup } from '../numbers/number-directory';
import { effectiveTime, plusDays } from '../time';
import { QUEUE_SQL } from './device-seq';

export const pendingAad = (wamid: string, waId: string, deviceId: number) =>
  `pending:${wamid}:${waId}:${deviceId}`;

interface QueuedEntry {
  item: DeviceCiphertext;
  streamSeq: number;
  prevSeq?: number;
  retentionDays: number;
}

const deviceKey = (c: DeviceCiphertext) => `${c.to.wa_id}|${c.to.device_id}`;

/**
 * Each device's queue cursor: the DELIVERY stream sequence of the last ciphertext queued for it in this
 * database (null: none recorded, e.g. a device's first message), optionally locking the counter rows.
 */
async function readCursors(
  q: { query: (sql: string, params: unknown[]) => Promise<unknown> },
  devices: DeviceCiphertext['to'][],
  lock: boolean,
): Promise<Map<string, number | null>> {
  const found = rowsOf<{ wa_id: string; device_id: number; stream_seq: string | null }>(
    await q.query(
      `SELECT wa_id, device_id, stream_seq FROM storage.device_counters
       WHERE (wa_id, device_id) IN (SELECT * FROM unnest($1::text[], $2::smallint[]))
       ORDER BY wa_id, device_id${lock ? ' FOR UPDATE' : ''}`,
      [devices.map((d) => d.wa_id), devices.map((d) => d.device_id)],
    ),
  );
  const out = new Map<string, number | null>();
  for (const r of found)
    out.set(`${r.wa_id}|${Number(r.device_id)}`, r.stream_seq === null ? null : Number(r.stream_seq));
  return out;
}

export interface QueuedCiphertext {
  ciphertext: DeviceCiphertext;
  /** DELIVERY stream sequence: the order crypto published in, used to order a batch. */
  streamSeq: number;
  /** The device subject's previous message when this one was stored (crypto's SubjectSequencer stamp). */
  prevSeq?: number;
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
    @Inject(APP_LOGGER) private readonly log: Logger,
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
  async write(ciphertext: DeviceCiphertext, streamSeq: number, prevSeq?: number): Promise<void> {
    await this.writer.add({ ciphertext, streamSeq, prevSeq });
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
      g.entries.map(({ item: { ciphertext: c, streamSeq, prevSeq }, retentionDays }) => [
        `${c.to.wa_id}|${c.to.device_id}|${c.wamid}`,
        { item: c, streamSeq, prevSeq, retentionDays },
      ]),
    );
    const batch = [...unique.values()];
    const devices = [...new Map(batch.map((e) => [deviceKey(e.item), e.item.to])).values()];
    // Read before the transaction (sealing may need a pool connection); the locked cursor is re-checked.
    const seen = await readCursors(g.db.ds, devices, false);
    const held = await this.heldBefore(g, batch, seen);
    const all = [...batch, ...held];
    const sealed = new Map<QueuedEntry, Buffer>();
    for (const e of all) {
      sealed.set(
        e,
        await g.db.keys.encrypt(
          e.item.phone_number_id,
          Buffer.from(e.item.ciphertext, 'base64'),
          pendingAad(e.item.wamid, e.item.to.wa_id, e.item.to.device_id),
        ),
      );
    }
    await inTx(g.db, async (tx) => {
      const cursors = await readCursors(tx, devices, true);
      for (const [key, cursor] of cursors) {
        // Another process queued this device's first messages meanwhile: what it skipped was not read.
        if (cursor !== null && seen.get(key) == null)
          throw new Error('device queue cursor appeared concurrently; retrying');
      }
      // At or below the cursor: queued already (read back by a later write, or a redelivery after commit).
      const entries = all
        .filter((e) => (cursors.get(deviceKey(e.item)) ?? 0) < e.streamSeq)
        .sort((a, b) => a.streamSeq - b.streamSeq);
      if (entries.length === 0) return;
      const created = entries.map((e) => effectiveTime(e.item.created_at, now));
      // Counters, cursors and rows in one statement (the counter rows are already locked, in key order).
      await tx.query(QUEUE_SQL, [
        entries.map((e) => e.item.to.wa_id),
        entries.map((e) => e.item.to.device_id),
        entries.map((e) => e.item.wamid),
        entries.map((e) => e.item.phone_number_id),
        entries.map((e) => e.item.type),
        created,
        entries.map((e, i) => plusDays(created[i], e.retentionDays)),
        entries.map((e) => sealed.get(e)),
        now.getTime() * 1000,
        now,
        entries.map((e) => e.streamSeq),
      ]);
    });
  }

  /**
   * A device's ciphertexts of this database between its cursor and the batch's newest one that are not
   * in the batch: held unacknowledged by another (perhaps killed) storage process. They are queued
   * first, so a device never receives a business's message after later ones of the same session
   * (libsignal on the device keeps only five receiver chains; every user message starts a new one).
   */
  private async heldBefore(
    g: RoutedGroup<QueuedCiphertext>,
    batch: QueuedEntry[],
    cursors: Map<string, number | null>,
  ): Promise<QueuedEntry[]> {
    const gaps = new Map<
      string,
      {
        to: DeviceCiphertext['to'];
        from: number;
        before: number;
        seqs: Set<number>;
        chain: { seq: number; prev?: number }[];
      }
    >();
    for (const e of batch) {
      const key = deviceKey(e.item);
      const cursor = cursors.get(key);
      if (cursor == null) continue;
      const gap = gaps.get(key) ?? {
        to: e.item.to,
        from: cursor + 1,
        before: 0,
        seqs: new Set<number>(),
        chain: [],
      };
      gap.before = Math.max(gap.before, e.streamSeq);
      gap.seqs.add(e.streamSeq);
      gap.chain.push({ seq: e.streamSeq, prev: e.prevSeq });
      gaps.set(key, gap);
    }
    // Only a device whose ciphertexts do not chain back to its cursor has one held elsewhere.
    const open = [...gaps.values()].filter((gap) => !chainsBack(gap.chain, gap.from - 1));
    const found = (
      await Promise.all(
        open.map(async (gap) => {
          const tokens = { wa_id: gap.to.wa_id, device_id: gap.to.device_id };
          const stored =
            (await this.bus.readMissing('delivery.ciphertext', tokens, gap.chain, gap.from - 1)) ??
            (await this.bus.readSubject('delivery.ciphertext', tokens, gap.from, gap.before));
          return stored.filter((m) => !gap.seqs.has(m.streamSeq));
        }),
      )
    ).flat();
    if (found.length === 0) return [];
    const routes = await this.directory.routes(found.map((m) => m.payload.phone_number_id));
    const held: QueuedEntry[] = [];
    for (const m of found) {
      const route = routes.get(m.payload.phone_number_id);
      // Another database's number: its own writes keep that database's order.
      let db: StoreDb;
      try {
        db = this.directory.dbFor(route);
      } catch {
        continue;
      }
      if (db !== g.db) continue;
      held.push({
        item: m.payload,
        streamSeq: m.streamSeq,
        retentionDays: this.directory.retentionDays(route),
      });
    }
    if (held.length > 0)
      this.log.info({ ciphertexts: held.length }, 'queued ciphertexts held elsewhere first');
    return held;
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
