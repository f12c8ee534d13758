import type { QueryRunner } from 'typeorm';
import type { EventName } from '@relay/protocol';
import { forChunks, rows, valuesList } from '../common/sql';
import type { Vault } from '../keys/vault';

/** An event crypto emits, recorded in the same transaction as the state change that produced it. */
export interface OutboxEvent {
  msgId: string;
  /** What produced it: the inbound wamid or 'out:' + the outbound wamid (the redelivery lookup key). */
  source: string;
  pn: string;
  waId: string;
  name: EventName;
  tokens: Record<string, string | number>;
  payload: unknown;
}

interface Row {
  msg_id: string;
  source: string;
  phone_number_id: string;
  wa_id: string;
  event: EventName;
  tokens: Record<string, string | number>;
  payload: Buffer;
}

/**
 * The transactional outbox: the events of a committed operation (payload sealed, it holds message
 * content). A redelivered input whose source is here is answered by re-publishing these rows with their
 * original msgIds instead of running libsignal again.
 */
export class OutboxRepository {
  constructor(private readonly vault: Vault) {}

  async find(runner: QueryRunner, sources: string[]): Promise<Map<string, OutboxEvent[]>> {
    const out = new Map<string, OutboxEvent[]>();
    if (sources.length === 0) return out;
    const found = await rows<Row>(
      runner,
      `SELECT msg_id, source, phone_number_id, wa_id, event, tokens, payload FROM crypto.outbox WHERE source = ANY($1) ORDER BY msg_id`,
      [[...new Set(sources)]],
    );
    for (const r of found) {
      const payload = JSON.parse(
        (await this.vault.open(r.phone_number_id, 'outbox', r.msg_id, r.payload)).toString('utf8'),
      ) as unknown;
      const e: OutboxEvent = {
        msgId: r.msg_id,
        source: r.source,
        pn: r.phone_number_id,
        waId: r.wa_id,
        name: r.event,
        tokens: r.tokens,
        payload,
      };
      out.set(r.source, [...(out.get(r.source) ?? []), e]);
    }
    return out;
  }

  async insert(runner: QueryRunner, events: OutboxEvent[]): Promise<void> {
    if (events.length === 0) return;
    const sealed = await Promise.all(
      events.map((e) => this.vault.seal(e.pn, 'outbox', e.msgId, Buffer.from(JSON.stringify(e.payload)))),
    );
    const cols = ['text', 'text', 'text', 'text', 'text', 'jsonb', 'bytea'];
    await forChunks(events, async (chunk, at) => {
      await runner.query(
        `INSERT INTO crypto.outbox (msg_id, source, phone_number_id, wa_id, event, tokens, payload)
         VALUES ${valuesList(chunk.length, cols)} ON CONFLICT (msg_id) DO NOTHING`,
        chunk.flatMap((e, i) => [
          e.msgId,
          e.source,
          e.pn,
          e.waId,
          e.name,
          JSON.stringify(e.tokens),
          sealed[at + i],
        ]),
      );
    });
  }

  /** Drops rows older than the dedupe horizon (their inputs are long acknowledged). */
  async purge(runner: QueryRunner, olderThanHours: number): Promise<number> {
    const r = await rows(
      runner,
      `DELETE FROM crypto.outbox WHERE created_at < now() - make_interval(secs => $1) RETURNING 1`,
      [olderThanHours * 3600],
    );
    return r.length;
  }
}
