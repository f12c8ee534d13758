import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, CLOCK, type Clock } from '@relay/platform';
import type { MessageStatus, OutboundFailure } from '@relay/protocol';
import type { StorageConfig } from '../config';
import { BatchWriter } from '../db/batch-writer';
import { retrying } from '../db/store-db';
import { NumberDirectory, writeGroups, type RoutedGroup } from '../numbers/number-directory';
import { effectiveTime, plusDays } from '../time';
import { contactsUpsert } from './contacts';

export interface StatusRecord {
  wamid: string;
  phoneNumberId: string;
  waId: string;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  /** 0 when the status is about the message, not one device. */
  deviceId: number;
  at: string;
  errorCode?: number;
  /** Error titles and details may quote content: sealed. */
  errors?: unknown;
}

export function statusRecord(s: MessageStatus): StatusRecord {
  return {
    wamid: s.wamid,
    phoneNumberId: s.phone_number_id,
    waId: s.recipient_id,
    status: s.status,
    deviceId: s.device_id ?? 0,
    at: s.timestamp,
    errorCode: s.errors?.[0]?.code,
    errors: s.errors,
  };
}

/** Cloud API's code for a message that could not be delivered to the user. */
export const UNDELIVERABLE = { code: 131026, title: 'Message undeliverable' } as const;

export function failureRecord(f: OutboundFailure): StatusRecord {
  return {
    wamid: f.wamid,
    phoneNumberId: f.phone_number_id,
    waId: f.to,
    status: 'failed',
    deviceId: 0,
    at: f.failed_at,
    errorCode: f.reason === 'internal' ? 131000 : UNDELIVERABLE.code,
    errors: { reason: f.reason, detail: f.detail },
  };
}

/** Appends to the status history (idempotent by wamid + status + device) and touches the contact. */
@Injectable()
export class StatusWriter {
  private readonly writer: BatchWriter<StatusRecord>;

  constructor(
    @Inject(NumberDirectory) private readonly directory: NumberDirectory,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(APP_CONFIG) config: StorageConfig,
  ) {
    this.writer = new BatchWriter((items) => this.flush(items), {
      maxBatch: config.WRITE_BATCH_SIZE,
      maxConcurrent: 2,
    });
  }

  write(record: StatusRecord): Promise<void> {
    return this.writer.add(record);
  }

  private async flush(items: StatusRecord[]): Promise<(Error | undefined)[]> {
    const grouped = await this.directory.group(items, (s) => s.phoneNumberId);
    return writeGroups(grouped, (g) => this.writeGroup(g));
  }

  private async writeGroup(g: RoutedGroup<StatusRecord>): Promise<void> {
    const now = this.clock.now();
    const unique = new Map(g.entries.map((e) => [`${e.item.wamid}|${e.item.status}|${e.item.deviceId}`, e]));
    const entries = [...unique.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, e]) => e);
    const rows: { item: StatusRecord; at: Date; expires: Date; errors: Buffer | null }[] = [];
    for (const { item, retentionDays } of entries) {
      const at = effectiveTime(item.at, now);
      const errors =
        item.errors === undefined
          ? null
          : await g.db.keys.encrypt(
              item.phoneNumberId,
              Buffer.from(JSON.stringify(item.errors)),
              `status:${item.wamid}:${item.status}:${item.deviceId}`,
            );
      rows.push({ item, at, expires: plusDays(at, retentionDays), errors });
    }
    const insert = `INSERT INTO storage.message_statuses (wamid, status, device_id, phone_number_id, wa_id, at, expires_at, error_code, errors_sealed)
         SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::integer[], $9::bytea[])
         ON CONFLICT DO NOTHING`;
    const params = [
      rows.map((r) => r.item.wamid),
      rows.map((r) => r.item.status),
      rows.map((r) => r.item.deviceId),
      rows.map((r) => r.item.phoneNumberId),
      rows.map((r) => r.item.waId),
      rows.map((r) => r.at),
      rows.map((r) => r.expires),
      rows.map((r) => r.item.errorCode ?? null),
      rows.map((r) => r.errors),
    ];
    const upsert = await contactsUpsert(
      g.db,
      rows.map((r) => ({ phoneNumberId: r.item.phoneNumberId, waId: r.item.waId, at: r.at })),
    );
    // One statement (atomic on its own): the statuses and their contacts in one round trip, no BEGIN/COMMIT.
    await retrying(() =>
      upsert
        ? g.db.ds.query(`WITH s AS (${insert}) ${upsert.sql(params.length + 1)}`, [
            ...params,
            ...upsert.params,
          ])
        : g.db.ds.query(insert, params),
    );
  }
}
