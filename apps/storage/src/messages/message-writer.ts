import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, CLOCK, type Clock } from '@relay/platform';
import type { InboundMessage, OutboundRequest } from '@relay/protocol';
import type { StorageConfig } from '../config';
import { BatchWriter } from '../db/batch-writer';
import { retrying } from '../db/store-db';
import { NumberDirectory, writeGroups, type RoutedGroup } from '../numbers/number-directory';
import { effectiveTime, plusDays } from '../time';
import { contactsUpsert, type ContactTouch } from './contacts';

export interface MessageRecord {
  wamid: string;
  phoneNumberId: string;
  direction: 'in' | 'out';
  waId: string;
  /** ISO time of the event (received_at / accepted_at). */
  at: string;
  /** Everything personal: sealed as one blob. */
  body: Record<string, unknown>;
  profileName?: string;
}

export function inboundRecord(m: InboundMessage): MessageRecord {
  return {
    wamid: m.wamid,
    phoneNumberId: m.phone_number_id,
    direction: 'in',
    waId: m.from.wa_id,
    at: m.received_at,
    profileName: m.profile_name,
    body: {
      content: m.content,
      device_id: m.from.device_id,
      envelope_id: m.envelope_id,
      identity_key_hash: m.identity_key_hash,
      identity_changed: m.identity_changed,
      profile_name: m.profile_name,
      sent_at: m.sent_at,
    },
  };
}

export function outboundRecord(m: OutboundRequest): MessageRecord {
  return {
    wamid: m.wamid,
    phoneNumberId: m.phone_number_id,
    direction: 'out',
    waId: m.to,
    at: m.accepted_at,
    body: { content: m.content, biz_opaque_callback_data: m.biz_opaque_callback_data },
  };
}

/** Stores messages of both directions (idempotent by wamid), batched per target database. */
@Injectable()
export class MessageWriter {
  private readonly writer: BatchWriter<MessageRecord>;

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

  /** Resolves once the message is committed. */
  write(record: MessageRecord): Promise<void> {
    return this.writer.add(record);
  }

  private async flush(items: MessageRecord[]): Promise<(Error | undefined)[]> {
    const grouped = await this.directory.group(items, (m) => m.phoneNumberId);
    return writeGroups(grouped, (g) => this.writeGroup(g));
  }

  private async writeGroup(g: RoutedGroup<MessageRecord>): Promise<void> {
    const now = this.clock.now();
    const byWamid = new Map(g.entries.map((e) => [e.item.wamid, e]));
    const entries = [...byWamid.values()].sort((a, b) => (a.item.wamid < b.item.wamid ? -1 : 1));
    const cols = {
      wamid: [] as string[],
      pn: [] as string[],
      dir: [] as string[],
      wa: [] as string[],
      created: [] as Date[],
      expires: [] as Date[],
      body: [] as Buffer[],
    };
    const contacts: ContactTouch[] = [];
    for (const { item, retentionDays } of entries) {
      const created = effectiveTime(item.at, now);
      cols.wamid.push(item.wamid);
      cols.pn.push(item.phoneNumberId);
      cols.dir.push(item.direction);
      cols.wa.push(item.waId);
      cols.created.push(created);
      cols.expires.push(plusDays(created, retentionDays));
      cols.body.push(
        await g.db.keys.encrypt(
          item.phoneNumberId,
          Buffer.from(JSON.stringify(item.body)),
          `msg:${item.wamid}`,
        ),
      );
      contacts.push({
        phoneNumberId: item.phoneNumberId,
        waId: item.waId,
        at: created,
        profileName: item.profileName,
      });
    }
    const insert = `INSERT INTO storage.messages (wamid, phone_number_id, direction, wa_id, created_at, expires_at, body_sealed)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::bytea[])
         ON CONFLICT (wamid) DO NOTHING`;
    const params = [cols.wamid, cols.pn, cols.dir, cols.wa, cols.created, cols.expires, cols.body];
    const upsert = await contactsUpsert(g.db, contacts);
    // One statement (atomic on its own): the messages and their contacts in one round trip, no BEGIN/COMMIT.
    await retrying(() =>
      upsert
        ? g.db.ds.query(`WITH m AS (${insert}) ${upsert.sql(params.length + 1)}`, [
            ...params,
            ...upsert.params,
          ])
        : g.db.ds.query(insert, params),
    );
  }
}
