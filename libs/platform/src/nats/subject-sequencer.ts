import type { PubAck } from 'nats';
import type { EventName, EventPayload } from '@relay/protocol';
import { eventSubject } from '@relay/protocol';
import type { NatsBus, TokenValues } from './bus';

interface Chain {
  /** Stream sequence of the subject's newest message as far as this process knows; undefined: unknown. */
  last?: number;
  tail: Promise<unknown>;
  pending: number;
}

/** JetStream's "wrong last sequence: N" (err_code 10071) carries the subject's real last sequence. */
function wrongLast(err: unknown): number | null | undefined {
  const e = err as { api_error?: { err_code?: number }; message?: string };
  if (e?.api_error?.err_code !== 10071 && !/wrong last sequence/i.test(e?.message ?? '')) return undefined;
  const m = /wrong last sequence:\s*(\d+)/i.exec(e?.message ?? '');
  return m ? Number(m[1]) : null;
}

/**
 * Publishes the events of each subject one after another, each with the stream sequence of the subject's
 * previous message as a JetStream expectation (`Nats-Expected-Last-Subject-Sequence`) and in the
 * `Relay-Prev-Subject-Seq` header. JetStream stores a message only if the expectation holds, so every
 * stored message names its true predecessor on its subject, and a consumer that has applied that
 * predecessor knows nothing lies in between without reading the stream. A stale guess (another process
 * published on the subject meanwhile, or this process just started) costs one refused publish or one
 * direct get, then the publish is retried with the real value.
 */
export class SubjectSequencer<N extends EventName> {
  private readonly chains = new Map<string, Chain>();

  constructor(
    private readonly bus: NatsBus,
    private readonly name: N,
    /** Subjects whose last sequence is remembered (least recently used are forgotten first). */
    private readonly capacity = 100_000,
  ) {}

  publish(tokens: TokenValues<N>, payload: EventPayload<N>, opts: { msgId?: string } = {}): Promise<PubAck> {
    const subject = eventSubject(this.bus.root, this.name, tokens);
    const chain = this.chains.get(subject) ?? { tail: Promise.resolve(), pending: 0 };
    // Most recently used last: Map keeps insertion order, the oldest entries are evicted first.
    this.chains.delete(subject);
    this.chains.set(subject, chain);
    chain.pending++;
    const run = chain.tail.then(() => this.publishNow(chain, tokens, payload, opts.msgId));
    chain.tail = run.catch(() => undefined);
    void run
      .finally(() => {
        chain.pending--;
        this.evict();
      })
      .catch(() => undefined);
    return run;
  }

  private async publishNow(
    chain: Chain,
    tokens: TokenValues<N>,
    payload: EventPayload<N>,
    msgId: string | undefined,
  ): Promise<PubAck> {
    for (let attempt = 0; ; attempt++) {
      // Unknown: guess "no message yet". If the subject has one, JetStream's refusal names it (no
      // extra lookup); only an unparsable refusal costs a direct get.
      const expected = chain.last ?? (attempt === 0 ? 0 : await this.bus.lastSubjectSeq(this.name, tokens));
      try {
        const ack = await this.bus.publish(this.name, tokens, payload, {
          msgId,
          expectLastSubjectSeq: expected,
        });
        // A duplicate stored nothing (its ack names the original message): the subject is unchanged.
        if (!ack.duplicate) chain.last = ack.seq;
        return ack;
      } catch (err) {
        const real = wrongLast(err);
        chain.last = real ?? undefined;
        // real === null: refused for a wrong sequence without naming the right one; the retry looks it up.
        // A timeout may or may not have stored the message: the guess is unknown either way.
        if (real === undefined || attempt >= 4) throw err;
      }
    }
  }

  private evict(): void {
    for (const [subject, chain] of this.chains) {
      if (this.chains.size <= this.capacity) return;
      if (chain.pending === 0) this.chains.delete(subject);
    }
  }
}

/**
 * True when nothing on a subject lies between `cursor` (the sequence a consumer last applied) and the
 * given messages of that subject: each one newer than the cursor names (in its SubjectSequencer stamp)
 * the cursor or the previous one of the list as its predecessor. Unstamped messages pass only when the
 * list itself holds every sequence after the cursor (true of a subject-only stream, else conservative).
 */
export function chainsBack(msgs: { seq: number; prev?: number }[], cursor: number): boolean {
  const newer = msgs.filter((m) => m.seq > cursor).sort((a, b) => a.seq - b.seq);
  let before = cursor;
  for (const m of newer) {
    if (m.seq === before) continue; // the same message twice (a redelivery in the same batch)
    if (m.prev !== before && m.seq !== before + 1) return false;
    before = m.seq;
  }
  return true;
}
