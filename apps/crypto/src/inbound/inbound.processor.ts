import type { DataSource, QueryRunner } from 'typeorm';
import {
  DevicePlaintext,
  MAX_CIPHERTEXT_BYTES,
  type DecryptFailureReason,
  type DeviceEnvelope,
  type InboundFailure,
  type InboundMessage,
} from '@relay/protocol';
import type { NatsBus } from '@relay/platform';
import type { Logger } from 'pino';
import type { Clock } from '@relay/platform';
import { inTransaction } from '../common/sql';
import { publishAll } from '../common/publisher';
import type { SessionBatch, SessionWork } from '../common/session-batch';
import type { OpResult } from '../signal/protocol';
import type { KeysRepository } from '../store/keys.repository';
import type { OutboxEvent, OutboxRepository } from '../store/outbox.repository';
import { sessionKeyOf, type SessionRepository } from '../store/session.repository';
import { identityKeyHash, inboundFailureMsgId, inboundWamid } from './ids';

interface Item {
  env: DeviceEnvelope;
  wamid: string;
  bytes?: Buffer;
}

export interface InboundOutcome {
  emitted: number;
  duplicate: boolean;
}

/**
 * Turns device envelopes into inbound.message / inbound.failure events, a batch at a time: one
 * transaction locks the batch's sessions, runs libsignal on the workers, then commits session state,
 * prekey/Kyber effects and the outbox rows together. Events are published after the commit and the
 * inputs acknowledged after that, so a crash anywhere re-runs into the outbox, never into libsignal twice.
 */
export class InboundProcessor {
  constructor(
    private readonly ds: DataSource,
    private readonly bus: NatsBus,
    private readonly sessions: SessionRepository,
    private readonly keys: KeysRepository,
    private readonly outbox: OutboxRepository,
    private readonly batch: SessionBatch,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  async process(envelopes: DeviceEnvelope[]): Promise<InboundOutcome[]> {
    const items: Item[] = envelopes.map((env) => ({ env, wamid: inboundWamid(env) }));
    const direct: OutboxEvent[] = [];
    for (const it of items) {
      const bytes = Buffer.from(it.env.ciphertext, 'base64');
      if (bytes.length > MAX_CIPHERTEXT_BYTES)
        direct.push(this.failure(it, 'oversized', `${bytes.length} bytes`));
      else if (bytes.length === 0) direct.push(this.failure(it, 'malformed', 'empty ciphertext'));
      else it.bytes = bytes;
    }
    const live = items.filter((it) => it.bytes);
    await this.keys.warm(live.map((it) => it.env.phone_number_id));
    const out = live.length
      ? await inTransaction(this.ds, (r) => this.decryptAll(r, live))
      : { events: [], direct: [], duplicates: new Set<string>() };
    const duplicates = out.duplicates;
    const all = [...direct, ...out.direct, ...out.events];
    await publishAll(this.bus, all);
    const emitted = new Map<string, number>();
    for (const e of all) emitted.set(e.source, (emitted.get(e.source) ?? 0) + 1);
    return items.map((it) => ({ emitted: emitted.get(it.wamid) ?? 0, duplicate: duplicates.has(it.wamid) }));
  }

  private async decryptAll(runner: QueryRunner, items: Item[]) {
    const keys = items.map((it) => ({
      pn: it.env.phone_number_id,
      waId: it.env.from.wa_id,
      deviceId: it.env.from.device_id,
    }));
    const identities = await this.keys.identities(
      runner,
      items.map((it) => it.env.phone_number_id),
    );
    // Lock first, then look in the outbox: a concurrent process that held the lock has committed by now.
    const states = await this.sessions.lock(
      runner,
      keys.filter((k) => identities.has(k.pn)),
    );
    const done = await this.outbox.find(
      runner,
      items.map((it) => it.wamid),
    );
    const fresh: OutboxEvent[] = [];
    // Not recorded: sealing would create a data key for a number that does not exist (or was erased).
    const direct: OutboxEvent[] = [];
    const replayed: OutboxEvent[] = [];
    const duplicates = new Set<string>();
    const works = new Map<string, SessionWork & { items: Item[] }>();
    const seen = new Set<string>();
    for (const [i, it] of items.entries()) {
      const prior = done.get(it.wamid);
      if (prior || seen.has(it.wamid)) {
        // Already processed (a redelivery): emit the recorded events again, same msgIds.
        if (prior && !seen.has(it.wamid)) replayed.push(...prior);
        duplicates.add(it.wamid);
        seen.add(it.wamid);
        continue;
      }
      seen.add(it.wamid);
      if (!identities.has(it.env.phone_number_id)) {
        direct.push(this.failure(it, 'unknown_recipient', 'no Signal identity for this phone number'));
        continue;
      }
      const k = sessionKeyOf(keys[i]);
      const w = works.get(k) ?? { key: keys[i], ops: [], items: [] };
      w.ops.push({ kind: 'decrypt', type: it.env.type, ciphertext: it.bytes ?? new Uint8Array() });
      w.items.push(it);
      works.set(k, w);
    }
    const list = [...works.values()];
    const results = await this.batch.run(runner, list, identities, states);
    list.forEach((w, i) =>
      results[i].results.forEach((r, j) => {
        const e = this.toEvent(w.items[j], r);
        if (e) fresh.push(e);
        else duplicates.add(w.items[j].wamid);
      }),
    );
    await this.batch.persist(runner, list, results, states);
    await this.outbox.insert(runner, fresh);
    return { events: [...replayed, ...fresh], direct, duplicates };
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
      failed_at: this.clock.now().toISOString(),
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
