import type { QueryRunner } from 'typeorm';
import type { EventName } from '@relay/protocol';
import { forChunks, rows, valuesList } from '../common/sql';
import type { Vault } from '../keys/vault';
import type { SessionKey } from './session.repository';

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

/** What an outbound batch needs from the outbox, read in one statement (see lookup()). */
export interface OutboxLookup {
  /** Recorded events by source: a redelivered input is answered with these. */
  done: Map<string, OutboxEvent[]>;
  /** The msgIds among `done` not marked published. */
  unpublished: Set<string>;
  /** Delivery ciphertexts of the looked-up sessions not marked published, in commit order. */
  behind: OutboxEvent[];
}

const COLUMNS = 'msg_id, source, phone_number_id, wa_id, event, tokens, payload';

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
      `SELECT ${COLUMNS} FROM crypto.outbox WHERE source = ANY($1) ORDER BY msg_id`,
      [[...new Set(sources)]],
    );
    for (const r of found) {
      const e = await this.open(r);
      out.set(e.source, [...(out.get(e.source) ?? []), e]);
    }
    return out;
  }

  /**
   * find() and, in the same statement, the delivery ciphertexts of these sessions not yet marked
   * published, in commit order (call it under the sessions' lock: no row of theirs can be added
   * meanwhile). A row can be in both answers (an input redelivered after its publish failed).
   */
  async lookup(runner: QueryRunner, sources: string[], sessions: SessionKey[]): Promise<OutboxLookup> {
    const out: OutboxLookup = { done: new Map(), unpublished: new Set(), behind: [] };
    if (sources.length === 0 && sessions.length === 0) return out;
    // The second branch's WHERE repeats the partial index's predicate, so the planner can use it.
    const found = await rows<Row & { published: boolean; behind: boolean }>(
      runner,
      `SELECT ${COLUMNS}, published_at IS NOT NULL AS published, false AS behind, seq
         FROM crypto.outbox WHERE source = ANY($1)
       UNION ALL
       SELECT o.msg_id, o.source, o.phone_number_id, o.wa_id, o.event, o.tokens, o.payload, false, true, o.seq
         FROM crypto.outbox o
         JOIN unnest($2::text[], $3::text[], $4::smallint[]) AS k(pn, wa, dev)
           ON o.phone_number_id = k.pn AND o.wa_id = k.wa AND (o.tokens->>'device_id')::smallint = k.dev
        WHERE o.published_at IS NULL AND o.event = 'delivery.ciphertext'
       ORDER BY seq NULLS FIRST, msg_id`,
      [
        [...new Set(sources)],
        sessions.map((k) => k.pn),
        sessions.map((k) => k.waId),
        sessions.map((k) => k.deviceId),
      ],
    );
    const opened = new Map<string, Promise<OutboxEvent>>();
    const events = await Promise.all(
      found.map((r) => {
        const e = opened.get(r.msg_id) ?? this.open(r);
        opened.set(r.msg_id, e);
        return e;
      }),
    );
    found.forEach((r, i) => {
      const e = events[i];
      if (r.behind) {
        out.behind.push(e);
        return;
      }
      out.done.set(e.source, [...(out.done.get(e.source) ?? []), e]);
      if (!r.published) out.unpublished.add(e.msgId);
    });
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

  /**
   * Marks rows as published (their events are stored in their streams). Rows another transaction
   * holds are skipped, not waited for: it is marking them (under a session lock) or deleting them, and a
   * row left unmarked only costs a duplicate publish later, which JetStream and consumers drop. Waiting
   * could deadlock with a batch that marks rows of several sessions in its own transaction.
   */
  async markPublished(runner: QueryRunner, msgIds: string[]): Promise<void> {
    if (msgIds.length === 0) return;
    // Joined by ctid (a locked row cannot move): one primary-key lookup per row, not two.
    await runner.query(
      `UPDATE crypto.outbox o SET published_at = now() FROM (
         SELECT ctid FROM crypto.outbox WHERE msg_id = ANY($1) AND published_at IS NULL
         FOR UPDATE SKIP LOCKED) AS l
       WHERE o.ctid = l.ctid`,
      [msgIds],
    );
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

  private async open(r: Row): Promise<OutboxEvent> {
    const payload = JSON.parse(
      (await this.vault.open(r.phone_number_id, 'outbox', r.msg_id, r.payload)).toString('utf8'),
    ) as unknown;
    return {
      msgId: r.msg_id,
      source: r.source,
      pn: r.phone_number_id,
      waId: r.wa_id,
      name: r.event,
      tokens: r.tokens,
      payload,
    };
  }
}
