import { randomInt } from 'node:crypto';
import {
  KEMKeyPair,
  KyberPreKeyRecord,
  PreKeyRecord,
  PrivateKey,
  SignedPreKeyRecord,
} from '@signalapp/libsignal-client';
import type { OneTimeEcPreKey, SignedEcPreKey, SignedKyberPreKey } from '@relay/protocol';
import { fromB64, toB64, type DeviceState } from './state';

const MAX_KEY_ID = 0xffffff;
const nextId = (id: number) => (id >= MAX_KEY_ID ? 1 : id + 1);

/** A fresh device: identity key and registration id; key ids start at random points. */
export function newDeviceState(server: string): DeviceState {
  return {
    v: 1,
    server,
    registration_id: randomInt(1, 16381),
    identity_private: toB64(PrivateKey.generate().serialize()),
    next_prekey_id: randomInt(1, 1 << 23),
    next_kyber_id: randomInt(1, 1 << 23),
    next_signed_id: randomInt(1, 1 << 23),
    signed_prekeys: {},
    prekeys: {},
    kyber_prekeys: {},
    kyber_last_resort_ids: [],
    kyber_used: [],
    sessions: {},
    identities: {},
    business_devices: {},
  };
}

export function identityPublic(state: DeviceState): string {
  return toB64(PrivateKey.deserialize(fromB64(state.identity_private)).getPublicKey().serialize());
}

function identityKey(state: DeviceState): PrivateKey {
  return PrivateKey.deserialize(fromB64(state.identity_private));
}

/** A new signed EC prekey, kept in the state and returned in upload form. */
export function newSignedPreKey(state: DeviceState): SignedEcPreKey {
  const id = state.next_signed_id;
  state.next_signed_id = nextId(id);
  const priv = PrivateKey.generate();
  const pub = priv.getPublicKey();
  const signature = identityKey(state).sign(pub.serialize());
  state.signed_prekeys[id] = toB64(SignedPreKeyRecord.new(id, Date.now(), pub, priv, signature).serialize());
  return { id, public_key: toB64(pub.serialize()), signature: toB64(signature) };
}

/** New signed Kyber prekeys (one-time, or the last-resort key when lastResort). */
export function newKyberPreKeys(state: DeviceState, count: number, lastResort = false): SignedKyberPreKey[] {
  const idk = identityKey(state);
  const out: SignedKyberPreKey[] = [];
  for (let i = 0; i < count; i++) {
    const id = state.next_kyber_id;
    state.next_kyber_id = nextId(id);
    const kp = KEMKeyPair.generate();
    const signature = idk.sign(kp.getPublicKey().serialize());
    state.kyber_prekeys[id] = toB64(KyberPreKeyRecord.new(id, Date.now(), kp, signature).serialize());
    if (lastResort) state.kyber_last_resort_ids.push(id);
    out.push({ id, public_key: toB64(kp.getPublicKey().serialize()), signature: toB64(signature) });
  }
  return out;
}

/** New one-time EC prekeys (unsigned, as in Signal). */
export function newPreKeys(state: DeviceState, count: number): OneTimeEcPreKey[] {
  const out: OneTimeEcPreKey[] = [];
  for (let i = 0; i < count; i++) {
    const id = state.next_prekey_id;
    state.next_prekey_id = nextId(id);
    const priv = PrivateKey.generate();
    state.prekeys[id] = toB64(PreKeyRecord.new(id, priv.getPublicKey(), priv).serialize());
    out.push({ id, public_key: toB64(priv.getPublicKey().serialize()) });
  }
  return out;
}
