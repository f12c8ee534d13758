import {
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
import { MAX_KYBER_USED, fromB64, toB64, type DeviceState } from './state';

/** Called when a business's identity key differs from the one seen before (e.g. keys were reset). */
export type IdentityChangeListener = (address: string) => void;

/**
 * libsignal's stores over the device state. They only mutate the in-memory state; the client saves
 * it after each whole operation, so an encrypt or decrypt is persisted as one unit.
 */
export class StateStores {
  readonly session: SessionStore;
  readonly identity: IdentityKeyStore;
  readonly prekey: PreKeyStore;
  readonly signed: SignedPreKeyStore;
  readonly kyber: KyberPreKeyStore;

  constructor(state: () => DeviceState, onIdentityChange: IdentityChangeListener) {
    this.session = new (class extends SessionStore {
      async saveSession(a: ProtocolAddress, r: SessionRecord) {
        state().sessions[a.toString()] = toB64(r.serialize());
      }
      async getSession(a: ProtocolAddress) {
        const s = state().sessions[a.toString()];
        return s ? SessionRecord.deserialize(fromB64(s)) : null;
      }
      async getExistingSessions(as: ProtocolAddress[]) {
        const out: SessionRecord[] = [];
        for (const a of as) {
          const s = await this.getSession(a);
          if (!s) throw new Error(`no session for ${a.toString()}`);
          out.push(s);
        }
        return out;
      }
    })();
    this.identity = new (class extends IdentityKeyStore {
      async getIdentityKey() {
        return PrivateKey.deserialize(fromB64(state().identity_private));
      }
      async getLocalRegistrationId() {
        return state().registration_id;
      }
      async saveIdentity(a: ProtocolAddress, key: PublicKey) {
        const prev = state().identities[a.name()];
        state().identities[a.name()] = toB64(key.serialize());
        if (prev && !PublicKey.deserialize(fromB64(prev)).equals(key)) {
          onIdentityChange(a.name());
          return IdentityChange.ReplacedExisting;
        }
        return IdentityChange.NewOrUnchanged;
      }
      // Trust on first use; a change is accepted but surfaced as an 'identity_changed' event.
      async isTrustedIdentity() {
        return true;
      }
      async getIdentity(a: ProtocolAddress) {
        const k = state().identities[a.name()];
        return k ? PublicKey.deserialize(fromB64(k)) : null;
      }
    })();
    this.prekey = new (class extends PreKeyStore {
      async savePreKey(id: number, r: PreKeyRecord) {
        state().prekeys[id] = toB64(r.serialize());
      }
      async getPreKey(id: number) {
        const k = state().prekeys[id];
        if (!k) throw new Error(`no prekey ${id}`);
        return PreKeyRecord.deserialize(fromB64(k));
      }
      async removePreKey(id: number) {
        delete state().prekeys[id];
      }
    })();
    this.signed = new (class extends SignedPreKeyStore {
      async saveSignedPreKey(id: number, r: SignedPreKeyRecord) {
        state().signed_prekeys[id] = toB64(r.serialize());
      }
      async getSignedPreKey(id: number) {
        const k = state().signed_prekeys[id];
        if (!k) throw new Error(`no signed prekey ${id}`);
        return SignedPreKeyRecord.deserialize(fromB64(k));
      }
    })();
    this.kyber = new (class extends KyberPreKeyStore {
      async saveKyberPreKey(id: number, r: KyberPreKeyRecord) {
        state().kyber_prekeys[id] = toB64(r.serialize());
      }
      async getKyberPreKey(id: number) {
        const k = state().kyber_prekeys[id];
        if (!k) throw new Error(`no kyber prekey ${id}`);
        return KyberPreKeyRecord.deserialize(fromB64(k));
      }
      // One-time keys are deleted; a last-resort key is reusable, so each (key, base key) use is
      // remembered and a replay refused.
      async markKyberPreKeyUsed(id: number, signedId: number, baseKey: PublicKey) {
        const s = state();
        if (!s.kyber_last_resort_ids.includes(id)) {
          delete s.kyber_prekeys[id];
          return;
        }
        const triple = `${id}:${signedId}:${toB64(baseKey.serialize())}`;
        if (s.kyber_used.includes(triple)) throw new Error('reused base key');
        s.kyber_used.push(triple);
        if (s.kyber_used.length > MAX_KYBER_USED)
          s.kyber_used.splice(0, s.kyber_used.length - MAX_KYBER_USED);
      }
    })();
  }
}
