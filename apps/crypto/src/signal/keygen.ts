import {
  IdentityKeyPair,
  KEMKeyPair,
  KyberPreKeyRecord,
  PreKeyRecord,
  PrivateKey,
  SignedPreKeyRecord,
} from '@signalapp/libsignal-client';
import { randomInt } from 'node:crypto';
import type { GeneratedKey, KeygenJob, KeygenResult } from './protocol';

/** Generates a number's identity and prekeys (runs in a worker: Kyber keygen is ~80 us each). */
export function generateKeys(job: KeygenJob): KeygenResult {
  let identity: PrivateKey;
  const out: KeygenResult = { preKeys: [], kyber: [] };
  if (job.identity) {
    const pair = IdentityKeyPair.generate();
    identity = pair.privateKey;
    out.identityPrivate = pair.privateKey.serialize();
    out.identityPublic = pair.publicKey.serialize();
    out.registrationId = randomInt(1, 16381);
  } else if (job.identityKey) {
    identity = PrivateKey.deserialize(new Uint8Array(job.identityKey));
  } else {
    throw new Error('keygen needs an identity');
  }
  const now = Date.now();
  for (const id of job.preKeyIds) {
    const k = PrivateKey.generate();
    out.preKeys.push({
      id,
      publicKey: k.getPublicKey().serialize(),
      record: PreKeyRecord.new(id, k.getPublicKey(), k).serialize(),
    });
  }
  const kyber = (id: number): GeneratedKey => {
    const kp = KEMKeyPair.generate();
    const pub = kp.getPublicKey().serialize();
    const signature = identity.sign(pub);
    return {
      id,
      publicKey: pub,
      signature,
      record: KyberPreKeyRecord.new(id, now, kp, signature).serialize(),
    };
  };
  out.kyber = job.kyberIds.map(kyber);
  if (job.lastResortId !== undefined) out.lastResort = kyber(job.lastResortId);
  if (job.signedId !== undefined) {
    const k = PrivateKey.generate();
    const pub = k.getPublicKey();
    const signature = identity.sign(pub.serialize());
    out.signed = {
      id: job.signedId,
      publicKey: pub.serialize(),
      signature,
      record: SignedPreKeyRecord.new(job.signedId, now, pub, k, signature).serialize(),
    };
  }
  return out;
}
