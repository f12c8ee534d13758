import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { MessageStatusValue } from '@relay/protocol';

const S = 'business_forwarding';

export interface OutboundRow {
  wamid: string;
  phone_number_id: string;
  waba_id: string;
  wa_id: string;
  biz_opaque_enc: Buffer | null;
  last_status: MessageStatusValue | null;
}

/** Messages the businesses sent: what status webhooks need (recipient, opaque data, last status). */
@Injectable()
export class OutboundMessagesRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async insert(r: Omit<OutboundRow, 'last_status'>, at: Date): Promise<void> {
    await this.ds.query(
      `INSERT INTO ${S}.outbound_messages (wamid, phone_number_id, waba_id, wa_id, biz_opaque_enc, created_at)
       VALUES ($1,$2,$3,$4,$5,$6)`,
      [r.wamid, r.phone_number_id, r.waba_id, r.wa_id, r.biz_opaque_enc, at],
    );
  }

  async delete(wamid: string): Promise<void> {
    await this.ds.query(`DELETE FROM ${S}.outbound_messages WHERE wamid = $1`, [wamid]);
  }

  async purge(before: Date): Promise<void> {
    await this.ds.query(`DELETE FROM ${S}.outbound_messages WHERE created_at < $1`, [before]);
  }
}
