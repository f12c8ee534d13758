import type { QueryRunner } from 'typeorm';
import {
  DevicePlaintext,
  MAX_CIPHERTEXT_BYTES,
  type DecryptFailureReason,
  type DeviceEnvelope,
  type InboundFailure,
  type InboundMessage,
} from '@relay/protocol';
import { chainsBack } from '@relay/platform';
import type { Logger } from 'pino';
import { inTransaction } from '../common/sql';
import { publishAll } from '../common/publisher';
import type { SessionWork } from '../common/session-batch';
import type { OpResult } from '../signal/protocol';
import type { OutboxEvent } from '../store/outbox.repository';
import { sessionKeyOf, type SessionKey, type SessionState } from '../store/session.repository';
import { identityKeyHash, inboundFailureMsgId, inboundWamid } from './ids';
import type { ProcessorDeps } from '../common/processor-deps';

interface Item {
  env: DeviceEnvelope;
  wamid: string;
  /** Stream sequence of the envelope (DEVICE_ENVELOPES): a session's envelopes are applied in this order. */
  seq: number;
  /** Stream sequence of the session's previous envelope when this one was stored, if the gateway stamped it. */
  prev?: number;
  bytes?: Buffer;
  /** Read back from the stream to apply it before a later envelope of its session; not a batch input. */
  filled?: boolean;
}

/** A device envelope with its stream sequence, as the consumer received it. */
export interface InboundInput {
  env: DeviceEnvelope;
  seq: number;
  /** The predecessor's stream sequence on the session's subject (JetStream-checked), when stamped. */
  prev?: number;
}

export interface InboundOutcome {
  emitted: number;
  duplicate: boolean;
}

const sessionOf = (env: DeviceEnvelope): SessionKey => ({
  pn: env.phone_number_id,
  waId: env.from.wa_id,
  deviceId: env.from.device_id,
});

/**
 * Turns device envelopes into inbound.message / inbound.failure events, a batch at a time: one
 * transaction locks the batch's sessions, runs libsignal on the workers, then commits session state,
 * prekey/Kyber effects and the outbox rows together. Events are published after the commit and the
 * inputs acknowledged after that, so a crash anywhere re-runs into the outbox, never into libsignal twice.
 *
 * Each session's envelopes are applied in stream order, whichever process holds them: under the session
 * lock, the envelopes of the session between its cursor (the last one applied) and the batch's are read
 * back from the stream and applied first. An envelope held by a process that died, or still waiting in
 * another batch, is thus never overtaken by later ones (which would ratchet the session past the
 * receiver chains libsignal keeps); its own delivery later finds it in the outbox.
 */
export class InboundProcessor {
  constructor(
    private readonly d: ProcessorDeps,
    private readonly log: Logger,
  ) {}

  async process(inputs: InboundInput[]): Promise<InboundOutcome[]> {
    const items: Item[] = inputs.map(({ env, seq, prev }) => ({ env, seq, prev, wamid: inboundWamid(env) }));
    const direct: OutboxEvent[] = [];
    for (const it of items) this.check(it, direct);
    const live = items.filter((it) => it.bytes);
    await this.d.keys.warm(live.map((it) => it.env.phone_number_id));
    const out = live.length
      ? await inTransaction(this.d.ds, (r) => this.decryptAll(r, live))
      : { events: [], direct: [], duplicates: new Set<string>(), readBack: 0, replayed: 0 };
    const duplicates = out.duplicates;
    const all = [...direct, ...out.direct, ...out.events];
    await publishAll(this.d.bus, all);
    this.count(all, out);
    const emitted = new Map<string, number>();
    for (const e of all) emitted.set(e.source, (emitted.get(e.source) ?? 0) + 1);
    return items.map((it) => ({ emitted: emitted.get(it.wamid) ?? 0, duplicate: duplicates.has(it.wamid) }));
  }

  /** Sets the ciphertext bytes, or adds the failure of an envelope no session can take. */
  private check(it: Item, failures: OutboxEvent[]): void {
    const bytes = Buffer.from(it.env.ciphertext, 'base64');
    if (bytes.length > MAX_CIPHERTEXT_BYTES)
      failures.push(this.failure(it, 'oversized', `${bytes.length} bytes`));
    else if (bytes.length === 0) failures.push(this.failure(it, 'malformed', 'empty ciphertext'));
    else it.bytes = bytes;
  }

  private async decryptAll(runner: QueryRunner, inputs: Item[]) {
    const identities = await this.d.keys.identities(
      runner,
      inputs.map((it) => it.env.phone_number_id),
    );
    // Lock first, then look in the outbox: a concurrent process that held the lock has committed by now.
    const locking = this.d.metrics.lockWait.startTimer({ direction: 'inbound' });
    const states = await this.d.sessions.lock(
      runner,
      inputs.map((it) => sessionOf(it.env)).filter((k) => identities.has(k.pn)),
    );
    locking();
    // Not recorded: sealing would create a data key for a number that does not exist (or was erased).
    const direct: OutboxEvent[] = [];
    const filled = await this.catchUp(inputs, states, direct);
    // Stream order is each session's order (one subject per session).
    const items = [...inputs, ...filled].sort((a, b) => a.seq - b.seq);
    const done = await this.d.outbox.find(
      runner,
      items.map((it) => it.wamid),
    );
    const fresh: OutboxEvent[] = [];
    const replayed: OutboxEvent[] = [];
    const duplicates = new Set<string>();
    const works = new Map<string, SessionWork & { items: Item[] }>();
    const seen = new Set<string>();
    for (const it of items) {
      const prior = done.get(it.wamid);
      if (prior || seen.has(it.wamid)) {
        // Already processed (a redelivery): emit the recorded events again, same msgIds. An envelope
        // read back that turns out processed needs nothing: its own delivery re-emits.
        if (!it.filled) {
          if (prior && !seen.has(it.wamid)) replayed.push(...prior);
          duplicates.add(it.wamid);
        }
        seen.add(it.wamid);
        continue;
      }
      seen.add(it.wamid);
      if (!identities.has(it.env.phone_number_id)) {
        direct.push(this.failure(it, 'unknown_recipient', 'no Signal identity for this phone number'));
        continue;
      }
      const key = sessionOf(it.env);
      const k = sessionKeyOf(key);
      const cursor = states.get(k)?.cursor;
      if (cursor != null && it.seq <= cursor) {
        // Older than an envelope already applied and not in the outbox (kept for OUTBOX_RETENTION_HOURS):
        // libsignal decides whether its chain is still kept.
        this.log.warn({ envelope_id: it.env.envelope_id, seq: it.seq, cursor }, 'envelope after a later one');
      }
      const w = works.get(k) ?? { key, ops: [], items: [] };
      w.ops.push({ kind: 'decrypt', type: it.env.type, ciphertext: it.bytes ?? new Uint8Array() });
      w.items.push(it);
      works.set(k, w);
    }
    const list = [...works.values()];
    for (const w of list) w.cursor = w.items[w.items.length - 1].seq;
    const results = await this.d.batch.run(runner, list, identities, states);
    list.forEach((w, i) =>
      results[i].results.forEach((r, j) => {
        const e = this.toEvent(w.items[j], r);
        if (e) fresh.push(e);
        else if (!w.items[j].filled) duplicates.add(w.items[j].wamid);
      }),
    );
    await this.d.batch.persist(runner, list, results, states);
    await this.d.outbox.insert(runner, fresh);
    return {
      events: [...replayed, ...fresh],
      direct,
      duplicates,
      readBack: filled.length,
      replayed: replayed.length,
    };
  }

  private count(
    published: OutboxEvent[],
    out: { duplicates: Set<string>; readBack: number; replayed: number },
  ) {
    const m = this.d.metrics;
    const fresh = published.length - out.replayed;
    const failed = published.filter((e) => e.name === 'inbound.failure').length;
    m.envelopes.inc({ outcome: 'decrypted' }, Math.max(0, fresh - failed));
    m.envelopes.inc({ outcome: 'failed' }, failed);
    m.envelopes.inc({ outcome: 'duplicate' }, out.duplicates.size);
    m.envelopes.inc({ outcome: 'read_back' }, out.readBack);
    m.republished.inc({ direction: 'inbound' }, out.replayed);
  }

  /**
   * The envelopes of the batch's sessions that lie between each session's cursor and its newest
   * envelope in the batch and are not in the batch: held unacknowledged by another (perhaps dead)
   * process, or waiting in another batch. Read back from the stream, all sessions at once.
   */
  private async catchUp(
    inputs: Item[],
    states: Map<string, SessionState>,
    failures: OutboxEvent[],
  ): Promise<Item[]> {
    const gaps = new Map<string, { env: DeviceEnvelope; from: number; before: number; items: Item[] }>();
    for (const it of inputs) {
      const k = sessionKeyOf(sessionOf(it.env));
      const cursor = states.get(k)?.cursor;
      // No cursor: a new session (or one from before cursors), there is nothing it must wait for.
      if (cursor == null) continue;
      const g = gaps.get(k) ?? { env: it.env, from: cursor + 1, before: 0, items: [] };
      g.before = Math.max(g.before, it.seq);
      g.items.push(it);
      gaps.set(k, g);
    }
    const open = [...gaps.values()].filter((g) => !chainsBack(g.items, g.from - 1));
    this.d.metrics.readBacks.inc(open.length);
    const found = await Promise.all(
      open.map(async (g) => {
        const key = sessionOf(g.env);
        const tokens = { phone_number_id: key.pn, wa_id: key.waId, device_id: key.deviceId };
        const inBatch = new Set(g.items.map((it) => it.seq));
        const stored =
          (await this.d.bus.readMissing('device.envelope', tokens, g.items, g.from - 1)) ??
          (await this.d.bus.readSubject('device.envelope', tokens, g.from, g.before));
        return stored.filter(
          (m) => !inBatch.has(m.streamSeq) && sessionKeyOf(sessionOf(m.payload)) === sessionKeyOf(key),
        );
      }),
    );
    const filled: Item[] = [];
    for (const m of found.flat()) {
      const it: Item = { env: m.payload, seq: m.streamSeq, wamid: inboundWamid(m.payload), filled: true };
      this.check(it, failures);
      if (it.bytes) filled.push(it);
    }
    if (filled.length > 0)
      this.log.info({ envelopes: filled.length }, 'applied envelopes held elsewhere before later ones');
    return filled;
  }

  private toEvent(it: Item, r: OpResult): OutboxEvent | null {
    if (!r.ok) {
      if (r.error === 'duplicate') {
        // libsignal already consumed this message key: the message was processed (under another
        // envelope id); it is not a failure and must not produce a second message.
        this.log.info({ envelope_id: it.env.envelope_id }, 'duplicate envelope dropped');
        return null;
      }
      const reason: DecryptFailureReason =
        r.error === 'malformed' || r.error === 'replayed_prekey' || r.error === 'untrusted_identity'
          ? r.error
          : 'undecryptable';
      return this.failure(it, reason, r.detail);
    }
    if (r.kind !== 'decrypt') return null;
    let parsed: ReturnType<typeof DevicePlaintext.safeParse>;
    try {
      parsed = DevicePlaintext.safeParse(JSON.parse(Buffer.from(r.plaintext).toString('utf8')));
    } catch {
      return this.failure(it, 'invalid_plaintext', 'plaintext is not JSON');
    }
    if (!parsed.success) {
      return this.failure(
        it,
        'invalid_plaintext',
        parsed.error.issues
          .map((i) => `${i.path.join('.')}: ${i.message}`)
          .join('; ')
          .slice(0, 500),
      );
    }
    const content = parsed.data.content;
    // Read receipts travel from businesses to users only; a user's read is a receipt frame to the gateway.
    if (content.type === 'read_receipt') {
      return this.failure(it, 'invalid_plaintext', 'content.type: read_receipt is not sent by users');
    }
    const env = it.env;
    const payload: InboundMessage = {
      wamid: it.wamid,
      envelope_id: env.envelope_id,
      phone_number_id: env.phone_number_id,
      from: env.from,
      ...(env.profile_name !== undefined ? { profile_name: env.profile_name } : {}),
      identity_key_hash: identityKeyHash(r.senderIdentity),
      identity_changed: r.identityChanged,
      sent_at: parsed.data.sent_at,
      received_at: env.received_at,
      content,
    };
    return this.event(it, 'inbound.message', it.wamid, payload);
  }

  private failure(it: Item, reason: DecryptFailureReason, detail: string): OutboxEvent {
    const payload: InboundFailure = {
      envelope_id: it.env.envelope_id,
      phone_number_id: it.env.phone_number_id,
      from: it.env.from,
      reason,
      detail: detail.slice(0, 512),
      failed_at: this.d.clock.now().toISOString(),
    };
    return this.event(it, 'inbound.failure', inboundFailureMsgId(it.wamid), payload);
  }

  private event(
    it: Item,
    name: 'inbound.message' | 'inbound.failure',
    msgId: string,
    payload: unknown,
  ): OutboxEvent {
    return {
      msgId,
      source: it.wamid,
      pn: it.env.phone_number_id,
      waId: it.env.from.wa_id,
      name,
      tokens: { phone_number_id: it.env.phone_number_id },
      payload,
    };
  }
}
