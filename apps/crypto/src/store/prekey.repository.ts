import type { QueryRunner } from 'typeorm';
import { rows } from '../common/sql';
import type { Vault } from '../keys/vault';
import type { GeneratedKey } from '../signal/protocol';

export interface IdentityRow {
  pn: string;
  registration_id: number;
  identity_public: Buffer;
  identity_private: Buffer;
  next_prekey_id: number;
  next_kyber_id: number;
  next_signed_id: number;
}

export interface ClaimedBundle {
  registration_id: number;
  identity_public: Buffer;
  sp_id: number;
  sp_pub: Buffer;
  sp_sig: Buffer;
  ec_id: number | null;
  ec_pub: Buffer | null;
  ky_id: number | null;
  ky_pub: Buffer | null;
  ky_sig: Buffer | null;
  lr_id: number | null;
  lr_pub: Buffer | null;
  lr_sig: Buffer | null;
  ec_left: number;
  ky_left: number;
}

/** Key ids live in 1..2^24-1 (Signal's range); counters wrap inside it. */
export const nextIds = (start: number, n: number) =>
  Array.from({ length: n }, (_, i) => ((start - 1 + i) % 0xfffffe) + 1);

/** A number's prekey pools: provisioning inserts, bundle claims, refill counts, rotation. */
export class PreKeyRepository {
  constructor(private readonly vault: Vault) {}

  async lockIdentity(runner: QueryRunner, pn: string, skipLocked: boolean): Promise<IdentityRow | null> {
    const found = await rows<IdentityRow>(
      runner,
      `SELECT phone_number_id AS pn, registration_id, identity_public, identity_private, next_prekey_id, next_kyber_id, next_signed_id
       FROM crypto.identities WHERE phone_number_id = $1 FOR UPDATE${skipLocked ? ' SKIP LOCKED' : ''}`,
      [pn],
    );
    return found[0] ?? null;
  }

  /** Inserts a new identity unless one exists (another replica provisioned first): returns whether it did. */
  async insertIdentity(
    runner: QueryRunner,
    pn: string,
    registrationId: number,
    pub: Uint8Array,
    priv: Uint8Array,
    next: { prekey: number; kyber: number; signed: number },
  ): Promise<boolean> {
    const sealed = await this.vault.seal(pn, 'identity', 'private', priv);
    const r = await rows(
      runner,
      `INSERT INTO crypto.identities (phone_number_id, registration_id, identity_public, identity_private, next_prekey_id, next_kyber_id, next_signed_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1`,
      [pn, registrationId, Buffer.from(pub), sealed, next.prekey, next.kyber, next.signed],
    );
    return r.length > 0;
  }

  async setCounters(
    runner: QueryRunner,
    pn: string,
    next: { prekey?: number; kyber?: number; signed?: number },
    rotated = false,
  ): Promise<void> {
    await runner.query(
      `UPDATE crypto.identities SET next_prekey_id = COALESCE($2, next_prekey_id), next_kyber_id = COALESCE($3, next_kyber_id),
       next_signed_id = COALESCE($4, next_signed_id), signed_rotated_at = CASE WHEN $5 THEN now() ELSE signed_rotated_at END
       WHERE phone_number_id = $1`,
      [pn, next.prekey ?? null, next.kyber ?? null, next.signed ?? null, rotated],
    );
  }

  async insertPreKeys(runner: QueryRunner, pn: string, keys: GeneratedKey[]): Promise<void> {
    if (keys.length === 0) return;
    const sealed = await Promise.all(keys.map((k) => this.vault.seal(pn, 'prekey', k.id, k.record)));
    await runner.query(
      `INSERT INTO crypto.prekeys (phone_number_id, id, public_key, record) SELECT $1, * FROM unnest($2::int[], $3::bytea[], $4::bytea[])`,
      [pn, keys.map((k) => k.id), keys.map((k) => Buffer.from(k.publicKey)), sealed],
    );
  }

  async insertKyber(
    runner: QueryRunner,
    pn: string,
    keys: GeneratedKey[],
    lastResort: boolean,
  ): Promise<void> {
    if (keys.length === 0) return;
    const sealed = await Promise.all(keys.map((k) => this.vault.seal(pn, 'kyber', k.id, k.record)));
    await runner.query(
      `INSERT INTO crypto.kyber_prekeys (phone_number_id, id, last_resort, public_key, signature, record)
       SELECT $1, u.id, $2, u.pub, u.sig, u.rec FROM unnest($3::int[], $4::bytea[], $5::bytea[], $6::bytea[]) AS u(id, pub, sig, rec)`,
      [
        pn,
        lastResort,
        keys.map((k) => k.id),
        keys.map((k) => Buffer.from(k.publicKey)),
        keys.map((k) => Buffer.from(k.signature ?? [])),
        sealed,
      ],
    );
  }

  async insertSigned(runner: QueryRunner, pn: string, k: GeneratedKey): Promise<void> {
    const sealed = await this.vault.seal(pn, 'signed', k.id, k.record);
    await runner.query(
      `INSERT INTO crypto.signed_prekeys (phone_number_id, id, public_key, signature, record) VALUES ($1, $2, $3, $4, $5)`,
      [pn, k.id, Buffer.from(k.publicKey), Buffer.from(k.signature ?? []), sealed],
    );
  }

  /** Retires the current signed prekey and last-resort key (kept for the grace period) except the new ones. */
  async retireCurrent(
    runner: QueryRunner,
    pn: string,
    keepSigned: number,
    keepLastResort: number,
  ): Promise<void> {
    await runner.query(
      `UPDATE crypto.signed_prekeys SET retired_at = now() WHERE phone_number_id = $1 AND retired_at IS NULL AND id <> $2`,
      [pn, keepSigned],
    );
    await runner.query(
      `UPDATE crypto.kyber_prekeys SET retired_at = now() WHERE phone_number_id = $1 AND last_resort AND retired_at IS NULL AND id <> $2`,
      [pn, keepLastResort],
    );
  }

  /** Deletes retired signed/last-resort keys past the grace period (their Kyber triples cascade). */
  async dropExpired(runner: QueryRunner, graceHours: number): Promise<number> {
    const secs = graceHours * 3600;
    const a = await rows(
      runner,
      `DELETE FROM crypto.signed_prekeys WHERE retired_at < now() - make_interval(secs => $1) RETURNING 1`,
      [secs],
    );
    const b = await rows(
      runner,
      `DELETE FROM crypto.kyber_prekeys WHERE last_resort AND retired_at < now() - make_interval(secs => $1) RETURNING 1`,
      [secs],
    );
    // Handed out in a bundle but never used by a PreKey message: the device gave up long ago.
    const c = await rows(
      runner,
      `DELETE FROM crypto.prekeys WHERE issued_at < now() - interval '30 days' RETURNING 1`,
    );
    const d = await rows(
      runner,
      `DELETE FROM crypto.kyber_prekeys WHERE NOT last_resort AND issued_at < now() - interval '30 days' RETURNING 1`,
    );
    return a.length + b.length + c.length + d.length;
  }

  async available(runner: QueryRunner, pn: string): Promise<{ ec: number; kyber: number }> {
    const [r] = await rows<{ ec: string; ky: string }>(
      runner,
      `SELECT (SELECT count(*) FROM crypto.prekeys WHERE phone_number_id = $1 AND issued_at IS NULL) AS ec,
              (SELECT count(*) FROM crypto.kyber_prekeys WHERE phone_number_id = $1 AND issued_at IS NULL AND NOT last_resort) AS ky`,
      [pn],
    );
    return { ec: Number(r.ec), kyber: Number(r.ky) };
  }

  /**
   * Hands out a bundle, taking one one-time EC and one one-time Kyber prekey in a single statement: the
   * SKIP LOCKED sub-selects make concurrent callers (on any node) take different rows, and a row is
   * marked issued (its private half stays here for the PreKey message that will use it).
   */
  async claimBundle(runner: QueryRunner, pn: string): Promise<ClaimedBundle | null> {
    const found = await rows<ClaimedBundle>(
      runner,
      `WITH ec AS (
         UPDATE crypto.prekeys SET issued_at = now() WHERE phone_number_id = $1 AND issued_at IS NULL AND id = (
           SELECT id FROM crypto.prekeys WHERE phone_number_id = $1 AND issued_at IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, public_key),
       ky AS (
         UPDATE crypto.kyber_prekeys SET issued_at = now() WHERE phone_number_id = $1 AND issued_at IS NULL AND id = (
           SELECT id FROM crypto.kyber_prekeys WHERE phone_number_id = $1 AND issued_at IS NULL AND NOT last_resort ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, public_key, signature)
       SELECT i.registration_id, i.identity_public,
         sp.id AS sp_id, sp.public_key AS sp_pub, sp.signature AS sp_sig,
         ec.id AS ec_id, ec.public_key AS ec_pub, ky.id AS ky_id, ky.public_key AS ky_pub, ky.signature AS ky_sig,
         lr.id AS lr_id, lr.public_key AS lr_pub, lr.signature AS lr_sig,
         (SELECT count(*) FROM crypto.prekeys WHERE phone_number_id = $1 AND issued_at IS NULL)::int AS ec_left,
         (SELECT count(*) FROM crypto.kyber_prekeys WHERE phone_number_id = $1 AND issued_at IS NULL AND NOT last_resort)::int AS ky_left
       FROM crypto.identities i
       JOIN LATERAL (SELECT id, public_key, signature FROM crypto.signed_prekeys WHERE phone_number_id = $1 AND retired_at IS NULL ORDER BY id DESC LIMIT 1) sp ON true
       LEFT JOIN LATERAL (SELECT id, public_key, signature FROM crypto.kyber_prekeys WHERE phone_number_id = $1 AND last_resort AND retired_at IS NULL ORDER BY id DESC LIMIT 1) lr ON true
       LEFT JOIN ec ON true LEFT JOIN ky ON true
       WHERE i.phone_number_id = $1`,
      [pn],
    );
    return found[0] ?? null;
  }
}
