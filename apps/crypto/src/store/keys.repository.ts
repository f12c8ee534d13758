import type { QueryRunner } from 'typeorm';
import { rows } from '../common/sql';
import type { Vault } from '../keys/vault';
import type { KeyReply, KeyRequest, KyberTriple, LocalIdentity } from '../signal/protocol';
import { TransactionConflictError } from '../common/sql';

const queues = new WeakMap<QueryRunner, Promise<unknown>>();

/** One connection runs one query at a time: chains of a batch ask for keys concurrently, so queue them. */
function serialized<T>(runner: QueryRunner, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(runner) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  queues.set(
    runner,
    next.catch(() => undefined),
  );
  return next;
}

/**
 * The business numbers' own keys as decryption needs them: identity, signed prekeys, one-time prekeys
 * and Kyber prekeys (read inside the caller's transaction), and the writes a decrypt makes to them.
 */
export class KeysRepository {
  constructor(private readonly vault: Vault) {}

  /** Data keys of these numbers into the cache: call before opening the transaction (see Vault.warm). */
  warm(pns: string[]): Promise<void> {
    return this.vault.warm(pns);
  }

  async identities(runner: QueryRunner, pns: string[]): Promise<Map<string, LocalIdentity>> {
    const out = new Map<string, LocalIdentity>();
    if (pns.length === 0) return out;
    const found = await rows<{ pn: string; registration_id: number; identity_private: Buffer }>(
      runner,
      `SELECT phone_number_id AS pn, registration_id, identity_private FROM crypto.identities WHERE phone_number_id = ANY($1)`,
      [[...new Set(pns)]],
    );
    for (const r of found) {
      const privateKey = await this.vault.open(r.pn, 'identity', 'private', r.identity_private);
      out.set(r.pn, { privateKey: new Uint8Array(privateKey), registrationId: r.registration_id });
    }
    return out;
  }

  /**
   * Answers the worker's key requests for one number while libsignal processes a PreKey message.
   * `claims` is shared by the chains of one batch: a one-time key (or Kyber triple) goes to the first
   * chain that asks, so two sessions of one batch never both use it; across batches and processes the
   * DELETE ... RETURNING check in applyUse decides.
   */
  keySource(runner: QueryRunner, pn: string, claims: Set<string>): (req: KeyRequest) => Promise<KeyReply> {
    const claim = (k: string) => {
      if (claims.has(k)) return false;
      claims.add(k);
      return true;
    };
    return (req) => serialized(runner, () => this.answer(runner, pn, req, claim));
  }

  private async answer(
    runner: QueryRunner,
    pn: string,
    req: KeyRequest,
    claim: (k: string) => boolean,
  ): Promise<KeyReply> {
    switch (req.kind) {
      case 'signed':
        return this.record(runner, pn, 'signed', 'signed_prekeys', req.id);
      case 'prekey':
        if (!claim(`${pn}|p|${req.id}`)) return { kind: 'record', record: null };
        return this.record(runner, pn, 'prekey', 'prekeys', req.id);
      case 'kyber': {
        const r = await this.record(runner, pn, 'kyber', 'kyber_prekeys', req.id);
        if (r.kind === 'record' && !r.lastResort && !claim(`${pn}|k|${req.id}`))
          return { kind: 'record', record: null };
        return r;
      }
      case 'triple': {
        const t = req.triple;
        if (!claim(`${pn}|t|${t.kyberId}|${t.signedId}|${Buffer.from(t.baseKey).toString('hex')}`)) {
          return { kind: 'triple', used: true };
        }
        const r = await rows(
          runner,
          `SELECT 1 FROM crypto.kyber_triples WHERE phone_number_id = $1 AND kyber_id = $2 AND signed_id = $3 AND base_key = $4`,
          [pn, req.triple.kyberId, req.triple.signedId, Buffer.from(req.triple.baseKey)],
        );
        return { kind: 'triple', used: r.length > 0 };
      }
    }
  }

  /**
   * Applies the key effects of committed decrypts. A prekey that is already gone means another process
   * used it concurrently: the transaction is retried and the loser then fails to decrypt.
   */
  async applyUse(
    runner: QueryRunner,
    pn: string,
    removedPreKeys: number[],
    removedKyber: number[],
    triples: KyberTriple[],
  ): Promise<void> {
    if (removedPreKeys.length > 0) {
      const gone = await rows(
        runner,
        `DELETE FROM crypto.prekeys WHERE phone_number_id = $1 AND id = ANY($2) RETURNING id`,
        [pn, removedPreKeys],
      );
      if (gone.length !== removedPreKeys.length)
        throw new TransactionConflictError('one-time prekey used concurrently');
    }
    if (removedKyber.length > 0) {
      const gone = await rows(
        runner,
        `DELETE FROM crypto.kyber_prekeys WHERE phone_number_id = $1 AND id = ANY($2) AND NOT last_resort RETURNING id`,
        [pn, removedKyber],
      );
      if (gone.length !== removedKyber.length)
        throw new TransactionConflictError('kyber prekey used concurrently');
    }
    if (triples.length > 0) {
      // A duplicate raises a unique violation: the transaction is retried and the replay then refused.
      await runner.query(
        `INSERT INTO crypto.kyber_triples (phone_number_id, kyber_id, signed_id, base_key)
         SELECT $1, * FROM unnest($2::int[], $3::int[], $4::bytea[])`,
        [
          pn,
          triples.map((t) => t.kyberId),
          triples.map((t) => t.signedId),
          triples.map((t) => Buffer.from(t.baseKey)),
        ],
      );
    }
  }

  private async record(
    runner: QueryRunner,
    pn: string,
    kind: 'signed' | 'prekey' | 'kyber',
    table: string,
    id: number,
  ): Promise<KeyReply> {
    const extra = kind === 'kyber' ? ', last_resort' : '';
    const found = await rows<{ record: Buffer; last_resort?: boolean }>(
      runner,
      `SELECT record${extra} FROM crypto.${table} WHERE phone_number_id = $1 AND id = $2`,
      [pn, id],
    );
    if (found.length === 0) return { kind: 'record', record: null };
    const record = await this.vault.open(pn, kind, id, found[0].record);
    return { kind: 'record', record: new Uint8Array(record), lastResort: found[0].last_resort === true };
  }
}
