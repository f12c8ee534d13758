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
  staged = new Staged();
  readonly identityKey: PrivateKey;
  readonly signedCache = new Map<number, SignedPreKeyRecord>();
  readonly lastResort = new Set<number>();

  constructor(
    readonly local: LocalIdentity,
    session: Uint8Array | null,
    remoteIdentity: Uint8Array | null,
    readonly keys: KeySource,
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

  readonly sessionStore: SessionStore = new ChainSessionStore(this);
  readonly identityStore: IdentityKeyStore = new ChainIdentityStore(this);
  readonly preKeyStore: PreKeyStore = new ChainPreKeyStore(this);
  readonly signedStore: SignedPreKeyStore = new ChainSignedStore(this);
  readonly kyberStore: KyberPreKeyStore = new ChainKyberStore(this);
}

function sameTriple(a: KyberTriple, b: KyberTriple): boolean {
  return a.kyberId === b.kyberId && a.signedId === b.signedId && Buffer.from(a.baseKey).equals(b.baseKey);
}

// The five libsignal store interfaces over one ChainStores (module-level classes: created once, not per job).

class ChainSessionStore extends SessionStore {
  constructor(private readonly s: ChainStores) {
    super();
  }
  async saveSession(_a: ProtocolAddress, record: SessionRecord): Promise<void> {
    this.s.staged.session = record;
  }
  async getSession(): Promise<SessionRecord | null> {
    return this.s.staged.session ?? this.s.session;
  }
  async getExistingSessions(): Promise<SessionRecord[]> {
    const r = this.s.staged.session ?? this.s.session;
    return r ? [r] : [];
  }
}

class ChainIdentityStore extends IdentityKeyStore {
  constructor(private readonly s: ChainStores) {
    super();
  }
  async getIdentityKey(): Promise<PrivateKey> {
    return this.s.identityKey;
  }
  async getLocalRegistrationId(): Promise<number> {
    return this.s.local.registrationId;
  }
  async saveIdentity(_a: ProtocolAddress, key: PublicKey): Promise<IdentityChange> {
    const current = this.s.staged.identity ?? this.s.remoteIdentity;
    this.s.staged.identity = key;
    return current && !current.equals(key) ? IdentityChange.ReplacedExisting : IdentityChange.NewOrUnchanged;
  }
  // Cloud API semantics: a new identity key is accepted and reported (identity_changed), not refused.
  async isTrustedIdentity(_a: ProtocolAddress, _k: PublicKey, _d: Direction): Promise<boolean> {
    return true;
  }
  async getIdentity(): Promise<PublicKey | null> {
    return this.s.staged.identity ?? this.s.remoteIdentity;
  }
}

class ChainPreKeyStore extends PreKeyStore {
  constructor(private readonly s: ChainStores) {
    super();
  }
  async savePreKey(): Promise<void> {
    throw new Error('prekeys are created by provisioning, not by sessions');
  }
  async getPreKey(id: number): Promise<PreKeyRecord> {
    if (this.s.removedPreKeys.has(id)) throw new MissingKeyError(`prekey ${id} already used`);
    const r = await this.s.keys({ kind: 'prekey', id });
    if (r.kind !== 'record' || !r.record) throw new MissingKeyError(`unknown prekey ${id}`);
    return PreKeyRecord.deserialize(bytes(r.record));
  }
  async removePreKey(id: number): Promise<void> {
    this.s.staged.removedPreKeys.push(id);
  }
}

class ChainSignedStore extends SignedPreKeyStore {
  constructor(private readonly s: ChainStores) {
    super();
  }
  async saveSignedPreKey(): Promise<void> {
    throw new Error('signed prekeys are created by provisioning');
  }
  async getSignedPreKey(id: number): Promise<SignedPreKeyRecord> {
    const hit = this.s.signedCache.get(id);
    if (hit) return hit;
    const r = await this.s.keys({ kind: 'signed', id });
    if (r.kind !== 'record' || !r.record) throw new MissingKeyError(`unknown signed prekey ${id}`);
    const rec = SignedPreKeyRecord.deserialize(bytes(r.record));
    this.s.signedCache.set(id, rec);
    return rec;
  }
}

class ChainKyberStore extends KyberPreKeyStore {
  constructor(private readonly s: ChainStores) {
    super();
  }
  async saveKyberPreKey(): Promise<void> {
    throw new Error('kyber prekeys are created by provisioning');
  }
  async getKyberPreKey(id: number): Promise<KyberPreKeyRecord> {
    if (this.s.removedKyber.has(id)) throw new MissingKeyError(`kyber prekey ${id} already used`);
    const r = await this.s.keys({ kind: 'kyber', id });
    if (r.kind !== 'record' || !r.record) throw new MissingKeyError(`unknown kyber prekey ${id}`);
    if (r.lastResort) this.s.lastResort.add(id);
    return KyberPreKeyRecord.deserialize(bytes(r.record));
  }
  async markKyberPreKeyUsed(kyberId: number, signedId: number, baseKey: PublicKey): Promise<void> {
    if (!this.s.lastResort.has(kyberId)) {
      this.s.staged.removedKyber.push(kyberId);
      return;
    }
    const triple = { kyberId, signedId, baseKey: baseKey.serialize() };
    const seen = this.s.triples.some((t) => sameTriple(t, triple));
    const r = seen ? { kind: 'triple' as const, used: true } : await this.s.keys({ kind: 'triple', triple });
    if (r.kind === 'triple' && r.used) throw new ReplayedPreKeyError('reused base key with last-resort key');
    this.s.staged.triples.push(triple);
  }
}
