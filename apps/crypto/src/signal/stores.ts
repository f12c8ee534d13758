import {
  Direction,
  IdentityChange,
  IdentityKeyStore,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  PreKeyRecord,
  PreKeyStore,
  PrivateKey,
  PublicKey,
  SessionRecord,
  SessionStore,
  SignedPreKeyRecord,
  SignedPreKeyStore,
  type ProtocolAddress,
} from '@signalapp/libsignal-client';
import type { KeyReply, KeyRequest, KyberTriple, LocalIdentity } from './protocol';

/** Asks the main thread for key material (it reads the database inside the open transaction). */
export type KeySource = (request: KeyRequest) => Promise<KeyReply>;

export class ReplayedPreKeyError extends Error {
  override readonly name = 'ReplayedPreKeyError';
}
export class MissingKeyError extends Error {
  override readonly name = 'MissingKeyError';
}

const bytes = (u: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(u);

/**
 * The writes one libsignal operation makes, staged so that a failed operation leaves nothing behind
 * (libsignal writes identity, Kyber use, prekey removal and session as separate awaits).
 */
class Staged {
  session: SessionRecord | null = null;
  identity: PublicKey | null = null;
  removedPreKeys: number[] = [];
  removedKyber: number[] = [];
  triples: KyberTriple[] = [];
}

/**
 * In-memory libsignal stores for one session (one business number, one remote device) during one chain
 * of operations. State lives here only for the duration of a job; the main thread persists the result.
 */
export class ChainStores {
  session: SessionRecord | null;
  remoteIdentity: PublicKey | null;
  sessionChanged = false;
  readonly removedPreKeys = new Set<number>();
  readonly removedKyber = new Set<number>();
  readonly triples: KyberTriple[] = [];
  private staged = new Staged();
  private readonly identityKey: PrivateKey;
  private readonly signedCache = new Map<number, SignedPreKeyRecord>();
  private readonly lastResort = new Set<number>();

  constructor(
    private readonly local: LocalIdentity,
    session: Uint8Array | null,
    remoteIdentity: Uint8Array | null,
    private readonly keys: KeySource,
  ) {
    this.identityKey = PrivateKey.deserialize(bytes(local.privateKey));
    this.session = session ? SessionRecord.deserialize(bytes(session)) : null;
    this.remoteIdentity = remoteIdentity ? PublicKey.deserialize(bytes(remoteIdentity)) : null;
  }

  begin(): void {
    this.staged = new Staged();
  }

  /** Applies the staged writes of a successful operation; returns whether the identity changed. */
  commit(): boolean {
    const s = this.staged;
    if (s.session) {
      this.session = s.session;
      this.sessionChanged = true;
    }
    let changed = false;
    if (s.identity) {
      changed = this.remoteIdentity !== null && !this.remoteIdentity.equals(s.identity);
      this.remoteIdentity = s.identity;
    }
    s.removedPreKeys.forEach((id) => this.removedPreKeys.add(id));
    s.removedKyber.forEach((id) => this.removedKyber.add(id));
    this.triples.push(...s.triples);
    this.staged = new Staged();
    return changed;
  }

  readonly sessionStore = ((self: ChainStores) =>
    new (class extends SessionStore {
      async saveSession(_a: ProtocolAddress, record: SessionRecord): Promise<void> {
        self.staged.session = record;
      }
      async getSession(): Promise<SessionRecord | null> {
        return self.staged.session ?? self.session;
      }
      async getExistingSessions(): Promise<SessionRecord[]> {
        const s = self.staged.session ?? self.session;
        return s ? [s] : [];
      }
    })())(this);

  readonly identityStore = ((self: ChainStores) =>
    new (class extends IdentityKeyStore {
      async getIdentityKey(): Promise<PrivateKey> {
        return self.identityKey;
      }
      async getLocalRegistrationId(): Promise<number> {
        return self.local.registrationId;
      }
      async saveIdentity(_a: ProtocolAddress, key: PublicKey): Promise<IdentityChange> {
        const current = self.staged.identity ?? self.remoteIdentity;
        self.staged.identity = key;
        return current && !current.equals(key)
          ? IdentityChange.ReplacedExisting
          : IdentityChange.NewOrUnchanged;
      }
      // Cloud API semantics: a new identity key is accepted and reported (identity_changed), not refused.
      async isTrustedIdentity(_a: ProtocolAddress, _k: PublicKey, _d: Direction): Promise<boolean> {
        return true;
      }
      async getIdentity(): Promise<PublicKey | null> {
        return self.staged.identity ?? self.remoteIdentity;
      }
    })())(this);

  readonly preKeyStore = ((self: ChainStores) =>
    new (class extends PreKeyStore {
      async savePreKey(): Promise<void> {
        throw new Error('prekeys are created by provisioning, not by sessions');
      }
      async getPreKey(id: number): Promise<PreKeyRecord> {
        if (self.removedPreKeys.has(id)) throw new MissingKeyError(`prekey ${id} already used`);
        const r = await self.keys({ kind: 'prekey', id });
        if (r.kind !== 'record' || !r.record) throw new MissingKeyError(`unknown prekey ${id}`);
        return PreKeyRecord.deserialize(bytes(r.record));
      }
      async removePreKey(id: number): Promise<void> {
        self.staged.removedPreKeys.push(id);
      }
    })())(this);

  readonly signedStore = ((self: ChainStores) =>
    new (class extends SignedPreKeyStore {
      async saveSignedPreKey(): Promise<void> {
        throw new Error('signed prekeys are created by provisioning');
      }
      async getSignedPreKey(id: number): Promise<SignedPreKeyRecord> {
        const hit = self.signedCache.get(id);
        if (hit) return hit;
        const r = await self.keys({ kind: 'signed', id });
        if (r.kind !== 'record' || !r.record) throw new MissingKeyError(`unknown signed prekey ${id}`);
        const rec = SignedPreKeyRecord.deserialize(bytes(r.record));
        self.signedCache.set(id, rec);
        return rec;
      }
    })())(this);

  readonly kyberStore = ((self: ChainStores) =>
    new (class extends KyberPreKeyStore {
      async saveKyberPreKey(): Promise<void> {
        throw new Error('kyber prekeys are created by provisioning');
      }
      async getKyberPreKey(id: number): Promise<KyberPreKeyRecord> {
        if (self.removedKyber.has(id)) throw new MissingKeyError(`kyber prekey ${id} already used`);
        const r = await self.keys({ kind: 'kyber', id });
        if (r.kind !== 'record' || !r.record) throw new MissingKeyError(`unknown kyber prekey ${id}`);
        if (r.lastResort) self.lastResort.add(id);
        return KyberPreKeyRecord.deserialize(bytes(r.record));
      }
      async markKyberPreKeyUsed(kyberId: number, signedId: number, baseKey: PublicKey): Promise<void> {
        if (!self.lastResort.has(kyberId)) {
          self.staged.removedKyber.push(kyberId);
          return;
        }
        const triple = { kyberId, signedId, baseKey: baseKey.serialize() };
        const seen = self.triples.some((t) => sameTriple(t, triple));
        const r = seen
          ? { kind: 'triple' as const, used: true }
          : await self.keys({ kind: 'triple', triple });
        if (r.kind === 'triple' && r.used)
          throw new ReplayedPreKeyError('reused base key with last-resort key');
        self.staged.triples.push(triple);
      }
    })())(this);
}

function sameTriple(a: KyberTriple, b: KyberTriple): boolean {
  return a.kyberId === b.kyberId && a.signedId === b.signedId && Buffer.from(a.baseKey).equals(b.baseKey);
}
