import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { inTransaction, withRunner } from '../common/sql';
import type { SignalEngine } from '../signal/worker-pool';
import { nextIds, type PreKeyRepository } from '../store/prekey.repository';
import type { Vault } from '../keys/vault';

export interface PoolSettings {
  poolSize: number;
  threshold: number;
}

/**
 * Creates and maintains a number's keys: identity + registration id + signed prekey + one-time EC and
 * Kyber pools + last-resort Kyber key (idempotent), pool refill and signed/last-resort rotation. Key
 * generation runs on the worker pool; each change commits in one transaction under the identity row lock.
 */
export class ProvisioningService {
  private readonly refilling = new Map<string, Promise<unknown>>();

  constructor(
    private readonly ds: DataSource,
    private readonly engine: SignalEngine,
    private readonly prekeys: PreKeyRepository,
    private readonly vault: Vault,
    private readonly pools: PoolSettings,
    private readonly log: Logger,
  ) {}

  /** Returns true when this call created the identity, false when it already existed. */
  async provision(pn: string): Promise<boolean> {
    const exists = await withRunner(this.ds, (r) => this.prekeys.lockIdentity(r, pn, true));
    if (exists) return false;
    const n = this.pools.poolSize;
    const keys = await this.engine.keygen({
      identity: true,
      preKeyIds: nextIds(1, n),
      kyberIds: nextIds(1, n),
      signedId: 1,
      lastResortId: n + 1,
    });
    const { identityPrivate, identityPublic, registrationId, signed, lastResort } = keys;
    if (!identityPrivate || !identityPublic || !registrationId || !signed || !lastResort)
      throw new Error('incomplete keygen result');
    await this.vault.warm([pn], true);
    return inTransaction(this.ds, async (r) => {
      const created = await this.prekeys.insertIdentity(
        r,
        pn,
        registrationId,
        identityPublic,
        identityPrivate,
        { prekey: n + 1, kyber: n + 2, signed: 2 },
      );
      if (!created) return false;
      await this.prekeys.insertSigned(r, pn, signed);
      await this.prekeys.insertPreKeys(r, pn, keys.preKeys);
      await this.prekeys.insertKyber(r, pn, keys.kyber, false);
      await this.prekeys.insertKyber(r, pn, [lastResort], true);
      this.log.info({ phone_number_id: pn }, 'provisioned Signal identity');
      return true;
    });
  }

  /** Tops the one-time pools up to the pool size when they fell below the threshold (one process at a time). */
  async refill(pn: string): Promise<{ ec: number; kyber: number }> {
    await this.vault.warm([pn]);
    return inTransaction(this.ds, async (r) => {
      const id = await this.prekeys.lockIdentity(r, pn, true);
      if (!id) return { ec: 0, kyber: 0 };
      const have = await this.prekeys.available(r, pn);
      const ec = have.ec < this.pools.threshold ? this.pools.poolSize - have.ec : 0;
      const kyber = have.kyber < this.pools.threshold ? this.pools.poolSize - have.kyber : 0;
      if (ec === 0 && kyber === 0) return { ec, kyber };
      const identityKey = await this.vault.open(pn, 'identity', 'private', id.identity_private);
      const keys = await this.engine.keygen({
        identityKey,
        preKeyIds: nextIds(id.next_prekey_id, ec),
        kyberIds: nextIds(id.next_kyber_id, kyber),
      });
      await this.prekeys.insertPreKeys(r, pn, keys.preKeys);
      await this.prekeys.insertKyber(r, pn, keys.kyber, false);
      await this.prekeys.setCounters(r, pn, {
        prekey: nextIds(id.next_prekey_id, ec + 1)[ec],
        kyber: nextIds(id.next_kyber_id, kyber + 1)[kyber],
      });
      this.log.info({ phone_number_id: pn, ec, kyber }, 'refilled one-time prekeys');
      return { ec, kyber };
    });
  }

  /** Fire-and-forget refill (bundle RPC found the pool low); one in flight per number in this process. */
  refillSoon(pn: string): void {
    if (this.refilling.has(pn)) return;
    const p = this.refill(pn)
      .catch((err: Error) => this.log.warn({ phone_number_id: pn, err: err.message }, 'prekey refill failed'))
      .finally(() => this.refilling.delete(pn));
    this.refilling.set(pn, p);
  }

  /** Waits for background refills (shutdown: let them commit before the pool and database close). */
  async idle(): Promise<void> {
    await Promise.all([...this.refilling.values()]);
  }

  /**
   * New signed EC prekey and last-resort Kyber key; the previous ones are retired, not deleted, so a
   * device that fetched a bundle just before can still start its session during the grace period.
   */
  async rotate(pn: string): Promise<{ signedId: number; lastResortId: number } | null> {
    await this.vault.warm([pn]);
    return inTransaction(this.ds, async (r) => {
      const id = await this.prekeys.lockIdentity(r, pn, true);
      if (!id) return null;
      const identityKey = await this.vault.open(pn, 'identity', 'private', id.identity_private);
      const [signedId] = nextIds(id.next_signed_id, 1);
      const [lastResortId] = nextIds(id.next_kyber_id, 1);
      const keys = await this.engine.keygen({
        identityKey,
        preKeyIds: [],
        kyberIds: [],
        signedId,
        lastResortId,
      });
      if (!keys.signed || !keys.lastResort) throw new Error('incomplete keygen result');
      await this.prekeys.insertSigned(r, pn, keys.signed);
      await this.prekeys.insertKyber(r, pn, [keys.lastResort], true);
      await this.prekeys.retireCurrent(r, pn, signedId, lastResortId);
      await this.prekeys.setCounters(
        r,
        pn,
        { signed: nextIds(signedId, 2)[1], kyber: nextIds(lastResortId, 2)[1] },
        true,
      );
      this.log.info({ phone_number_id: pn, signed_prekey_id: signedId }, 'rotated signed prekey');
      return { signedId, lastResortId };
    });
  }
}
