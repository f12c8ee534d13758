import type { QueryRunner } from 'typeorm';
import type { ChainOp, ChainResult, KyberTriple, LocalIdentity } from '../signal/protocol';
import type { SignalEngine } from '../signal/worker-pool';
import type { KeysRepository } from '../store/keys.repository';
import {
  sessionKeyOf,
  type SessionKey,
  type SessionRepository,
  type SessionState,
} from '../store/session.repository';

/** The operations of one batch on one session, in arrival order. */
export interface SessionWork {
  key: SessionKey;
  ops: ChainOp[];
  /** Inbound: stream sequence of the newest envelope applied, recorded as the session's cursor. */
  cursor?: number;
}

/**
 * Runs the libsignal work of one batch inside the caller's transaction: the session rows are already
 * locked, chains for different sessions run in parallel on the worker pool, and the new state of every
 * session plus the prekey / Kyber effects are written back in the same transaction.
 */
export class SessionBatch {
  constructor(
    private readonly engine: SignalEngine,
    private readonly sessions: SessionRepository,
    private readonly keys: KeysRepository,
  ) {}

  async run(
    runner: QueryRunner,
    works: SessionWork[],
    identities: Map<string, LocalIdentity>,
    states: Map<string, SessionState>,
  ): Promise<ChainResult[]> {
    const claims = new Set<string>();
    return Promise.all(
      works.map((w) => {
        const identity = identities.get(w.key.pn);
        if (!identity) throw new Error(`identity of ${w.key.pn} not loaded`);
        const state = states.get(sessionKeyOf(w.key)) ?? { identity: null, session: null };
        return this.engine.runChain(
          {
            local: { name: w.key.pn, deviceId: 1 },
            remote: { name: w.key.waId, deviceId: w.key.deviceId },
            identity,
            session: state.session,
            remoteIdentity: state.identity,
            ops: w.ops,
          },
          this.keys.keySource(runner, w.key.pn, claims),
        );
      }),
    );
  }

  /** Persists what the chains changed (call before inserting the outbox rows, same transaction). */
  async persist(
    runner: QueryRunner,
    works: SessionWork[],
    results: ChainResult[],
    before: Map<string, SessionState>,
  ): Promise<void> {
    const updates: (SessionKey & SessionState & { seq?: number })[] = [];
    const cursors: (SessionKey & { seq: number })[] = [];
    const empty: SessionKey[] = [];
    const byPn = new Map<string, { pre: number[]; kyber: number[]; triples: KyberTriple[] }>();
    works.forEach((w, i) => {
      const r = results[i];
      if (r.sessionChanged)
        updates.push({ ...w.key, identity: r.remoteIdentity, session: r.session, seq: w.cursor });
      else if (w.cursor !== undefined) cursors.push({ ...w.key, seq: w.cursor });
      if (!r.sessionChanged && !before.get(sessionKeyOf(w.key))?.session) empty.push(w.key);
      const acc = byPn.get(w.key.pn) ?? { pre: [], kyber: [], triples: [] };
      acc.pre.push(...r.removedPreKeys);
      acc.kyber.push(...r.removedKyberPreKeys);
      acc.triples.push(...r.kyberTriples);
      byPn.set(w.key.pn, acc);
    });
    await this.sessions.save(runner, updates);
    await this.sessions.advance(runner, cursors);
    await this.sessions.deleteEmpty(runner, empty);
    for (const [pn, acc] of byPn) await this.keys.applyUse(runner, pn, acc.pre, acc.kyber, acc.triples);
  }
}
