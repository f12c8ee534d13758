import { DataKeyStore, KeyRing, LocalKeyProvider, type Queryable } from '@relay/envelope-crypto';

export type SealedKind = 'identity' | 'signed' | 'prekey' | 'kyber' | 'session' | 'outbox';

/**
 * Seals everything crypto keeps at rest with the number's data key (tenant = phone_number_id). The AAD
 * names the row, so a blob copied to another row, table or number does not open.
 */
export class Vault {
  constructor(private readonly ring: KeyRing) {}

  static local(db: Queryable, masterKey: string, previous = ''): Vault {
    return new Vault(new KeyRing(new DataKeyStore(db, 'crypto'), new LocalKeyProvider(masterKey, previous)));
  }

  seal(phoneNumberId: string, kind: SealedKind, id: string | number, data: Uint8Array): Promise<Buffer> {
    return this.ring.encrypt(phoneNumberId, data, `${kind}:${id}`);
  }

  open(phoneNumberId: string, kind: SealedKind, id: string | number, sealed: Uint8Array): Promise<Buffer> {
    return this.ring.decrypt(phoneNumberId, sealed, `${kind}:${id}`);
  }

  /**
   * Loads the numbers' data keys into the cache before a transaction starts. A transaction holds a pool
   * connection; if every connection were held by transactions each waiting for a data-key query, the
   * pool would deadlock. `create` is only for provisioning a new number.
   */
  async warm(phoneNumberIds: string[], create = false): Promise<void> {
    await Promise.all(
      [...new Set(phoneNumberIds)].map((pn) =>
        create ? this.ring.encrypt(pn, new Uint8Array(), 'warm') : this.ring.load(pn),
      ),
    );
  }

  /** Crypto-shredding of one number: every sealed row of it becomes unreadable. */
  destroy(phoneNumberId: string): Promise<boolean> {
    return this.ring.destroy(phoneNumberId);
  }

  /** Rewraps data keys under the current master key (online master-key rotation). */
  rotateMasterKey(): Promise<{ rewrapped: number }> {
    return this.ring.rotate();
  }
}

/** Session row content: the remote identity key and the session record, sealed together. */
export function packSessionState(identity: Uint8Array | null, session: Uint8Array | null): Buffer {
  const id = identity ?? new Uint8Array();
  const head = Buffer.alloc(2);
  head.writeUInt16BE(id.length);
  return Buffer.concat([head, id, session ?? new Uint8Array()]);
}

export function unpackSessionState(buf: Buffer): { identity: Uint8Array | null; session: Uint8Array | null } {
  const n = buf.readUInt16BE(0);
  const identity = buf.subarray(2, 2 + n);
  const session = buf.subarray(2 + n);
  return {
    identity: identity.length ? new Uint8Array(identity) : null,
    session: session.length ? new Uint8Array(session) : null,
  };
}
