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

/**
 * Messages the businesses sent: what status webhooks need (recipient, opaque data, last status). Rows
 * are written by the send path's group commit (cloud-api/send.service.ts), one statement per batch.
 */
@Injectable()
export class OutboundMessagesRepository {
  constructor(@Inject(DataSource) private readonly ds: DataSource) {}

  async delete(wamid: string): Promise<void> {
    await this.ds.query(`DELETE FROM ${S}.outbound_messages WHERE wamid = $1`, [wamid]);
  }

  async purge(before: Date): Promise<void> {
    await this.ds.query(`DELETE FROM ${S}.outbound_messages WHERE created_at < $1`, [before]);
  }
}
