import {
  CiphertextMessageType,
  Direction,
  IdentityChange,
  IdentityKeyPair,
  IdentityKeyStore,
  KEMKeyPair,
  KEMPublicKey,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  PreKeyBundle,
  PreKeyRecord,
  PreKeySignalMessage,
  PreKeyStore,
  PrivateKey,
  ProtocolAddress,
  PublicKey,
  SessionRecord,
  SessionStore,
  SignalMessage,
  SignedPreKeyRecord,
  SignedPreKeyStore,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from '@signalapp/libsignal-client';
import type { PreKeyBundle as BundleJson } from '@relay/protocol';

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');
const raw = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

/**
 * A user's device with real libsignal stores kept in memory (serialized, as a phone would persist them).
 * Used by the tests and the benchmark to play the device side against the crypto service; it is not
 * used by the service itself.
 */
export class DeviceClient {
  readonly identity: IdentityKeyPair;
  readonly registrationId: number;
  readonly address: ProtocolAddress;
  private readonly sessions = new Map<string, Uint8Array<ArrayBuffer>>();
  private readonly identities = new Map<string, PublicKey>();
  private readonly preKeys = new Map<number, Uint8Array<ArrayBuffer>>();
  private readonly signed = new Map<number, Uint8Array<ArrayBuffer>>();
  private readonly kyber = new Map<number, Uint8Array<ArrayBuffer>>();
  private nextKeyId = 1;

  constructor(
    readonly waId: string,
    readonly deviceId = 1,
    identity?: IdentityKeyPair,
  ) {
    this.identity = identity ?? IdentityKeyPair.generate();
    this.registrationId = 1 + (Number.parseInt(waId.slice(-4), 10) % 16000) + deviceId;
    this.address = ProtocolAddress.new(waId, deviceId);
  }

  /** A fresh bundle of this device (what gateway's prekey directory hands out once). */
  bundle(withOneTimeEc = true): BundleJson {
    const id = this.nextKeyId++;
    const spk = PrivateKey.generate();
    const spkSig = this.identity.privateKey.sign(spk.getPublicKey().serialize());
    this.signed.set(id, SignedPreKeyRecord.new(id, Date.now(), spk.getPublicKey(), spk, spkSig).serialize());
    const kp = KEMKeyPair.generate();
    const kSig = this.identity.privateKey.sign(kp.getPublicKey().serialize());
    this.kyber.set(id, KyberPreKeyRecord.new(id, Date.now(), kp, kSig).serialize());
    let prekey: BundleJson['prekey'];
    if (withOneTimeEc) {
      const opk = PrivateKey.generate();
      this.preKeys.set(id, PreKeyRecord.new(id, opk.getPublicKey(), opk).serialize());
      prekey = { id, public_key: b64(opk.getPublicKey().serialize()) };
    }
    return {
      registration_id: this.registrationId,
      device_id: this.deviceId,
      identity_key: b64(this.identity.publicKey.serialize()),
      signed_prekey: { id, public_key: b64(spk.getPublicKey().serialize()), signature: b64(spkSig) },
      prekey,
      kyber_prekey: {
        id,
        public_key: b64(kp.getPublicKey().serialize()),
        signature: b64(kSig),
        last_resort: false,
      },
    };
  }

  /** Starts a session with a business from the bundle crypto returned. */
  async startSession(phoneNumberId: string, b: BundleJson): Promise<void> {
    const bundle = PreKeyBundle.new(
      b.registration_id,
      b.device_id,
      b.prekey?.id ?? null,
      b.prekey ? PublicKey.deserialize(raw(b.prekey.public_key)) : null,
      b.signed_prekey.id,
      PublicKey.deserialize(raw(b.signed_prekey.public_key)),
      raw(b.signed_prekey.signature),
      PublicKey.deserialize(raw(b.identity_key)),
      b.kyber_prekey.id,
      KEMPublicKey.deserialize(raw(b.kyber_prekey.public_key)),
      raw(b.kyber_prekey.signature),
    );
    await processPreKeyBundle(
      bundle,
      this.biz(phoneNumberId, b.device_id),
      this.address,
      this.sessionStore,
      this.identityStore,
    );
  }

  hasSession(phoneNumberId: string): boolean {
    return this.sessions.has(`${phoneNumberId}.1`);
  }

  async encrypt(
    phoneNumberId: string,
    plaintext: string,
  ): Promise<{ type: 'prekey' | 'whisper'; ciphertext: string }> {
    const ct = await signalEncrypt(
      new Uint8Array(Buffer.from(plaintext)),
      this.biz(phoneNumberId),
      this.address,
      this.sessionStore,
      this.identityStore,
    );
    return {
      type: ct.type() === CiphertextMessageType.PreKey ? 'prekey' : 'whisper',
      ciphertext: b64(ct.serialize()),
    };
  }

  async decrypt(phoneNumberId: string, type: 'prekey' | 'whisper', ciphertext: string): Promise<string> {
    const from = this.biz(phoneNumberId);
    const pt =
      type === 'prekey'
        ? await signalDecryptPreKey(
            PreKeySignalMessage.deserialize(raw(ciphertext)),
            from,
            this.address,
            this.sessionStore,
            this.identityStore,
            this.preKeyStore,
            this.signedStore,
            this.kyberStore,
          )
        : await signalDecrypt(
            SignalMessage.deserialize(raw(ciphertext)),
            from,
            this.address,
            this.sessionStore,
            this.identityStore,
          );
    return Buffer.from(pt).toString('utf8');
  }

  private biz(phoneNumberId: string, deviceId = 1): ProtocolAddress {
    return ProtocolAddress.new(phoneNumberId, deviceId);
  }

  private readonly sessionStore = ((d: DeviceClient) =>
    new (class extends SessionStore {
      async saveSession(a: ProtocolAddress, r: SessionRecord) {
        d.sessions.set(a.toString(), r.serialize());
      }
      async getSession(a: ProtocolAddress) {
        const s = d.sessions.get(a.toString());
        return s ? SessionRecord.deserialize(s) : null;
      }
      async getExistingSessions(as: ProtocolAddress[]) {
        return as.map((a) => SessionRecord.deserialize(d.sessions.get(a.toString()) ?? new Uint8Array()));
      }
    })())(this);

  private readonly identityStore = ((d: DeviceClient) =>
    new (class extends IdentityKeyStore {
      async getIdentityKey() {
        return d.identity.privateKey;
      }
      async getLocalRegistrationId() {
        return d.registrationId;
      }
      async saveIdentity(a: ProtocolAddress, k: PublicKey) {
        const old = d.identities.get(a.toString());
        d.identities.set(a.toString(), k);
        return old && !old.equals(k) ? IdentityChange.ReplacedExisting : IdentityChange.NewOrUnchanged;
      }
      async isTrustedIdentity(_a: ProtocolAddress, _k: PublicKey, _d: Direction) {
        return true;
      }
      async getIdentity(a: ProtocolAddress) {
        return d.identities.get(a.toString()) ?? null;
      }
    })())(this);

  private readonly preKeyStore = ((d: DeviceClient) =>
    new (class extends PreKeyStore {
      async savePreKey(id: number, r: PreKeyRecord) {
        d.preKeys.set(id, r.serialize());
      }
      async getPreKey(id: number) {
        const r = d.preKeys.get(id);
        if (!r) throw new Error(`no prekey ${id}`);
        return PreKeyRecord.deserialize(r);
      }
      async removePreKey(id: number) {
        d.preKeys.delete(id);
      }
    })())(this);

  private readonly signedStore = ((d: DeviceClient) =>
    new (class extends SignedPreKeyStore {
      async saveSignedPreKey(id: number, r: SignedPreKeyRecord) {
        d.signed.set(id, r.serialize());
      }
      async getSignedPreKey(id: number) {
        const r = d.signed.get(id);
        if (!r) throw new Error(`no signed prekey ${id}`);
        return SignedPreKeyRecord.deserialize(r);
      }
    })())(this);

  private readonly kyberStore = ((d: DeviceClient) =>
    new (class extends KyberPreKeyStore {
      async saveKyberPreKey(id: number, r: KyberPreKeyRecord) {
        d.kyber.set(id, r.serialize());
      }
      async getKyberPreKey(id: number) {
        const r = d.kyber.get(id);
        if (!r) throw new Error(`no kyber prekey ${id}`);
        return KyberPreKeyRecord.deserialize(r);
      }
      async markKyberPreKeyUsed(id: number) {
        d.kyber.delete(id);
      }
    })())(this);
}
