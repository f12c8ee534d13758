import { KEMPublicKey, PublicKey } from '@signalapp/libsignal-client';

export class InvalidKeyError extends Error {
  override readonly name = 'InvalidKeyError';
}

export interface SignedKeyInput {
  id: number;
  public_key: string;
  signature: string;
}

/** libsignal behind an adapter: parses public keys and checks XEdDSA signatures by an identity key. */
export class KeyVerifier {
  /** Throws InvalidKeyError unless every key parses and every signature verifies. */
  verifyUpload(
    identityKey: Uint8Array,
    keys: { signedEc: SignedKeyInput[]; signedKyber: SignedKeyInput[]; oneTimeEc: { public_key: string }[] },
  ): void {
    const identity = this.parse(() => PublicKey.deserialize(toBytes(identityKey)), 'identity key');
    for (const k of keys.signedEc) {
      const pub = this.parse(() => PublicKey.deserialize(b64(k.public_key)), `signed prekey ${k.id}`);
      this.check(identity, pub.serialize(), k, 'signed prekey');
    }
    for (const k of keys.signedKyber) {
      const pub = this.parse(() => KEMPublicKey.deserialize(b64(k.public_key)), `kyber prekey ${k.id}`);
      this.check(identity, pub.serialize(), k, 'kyber prekey');
    }
    for (const k of keys.oneTimeEc)
      this.parse(() => PublicKey.deserialize(b64(k.public_key)), 'one-time prekey');
  }

  private check(
    identity: PublicKey,
    serialized: Uint8Array<ArrayBuffer>,
    k: SignedKeyInput,
    what: string,
  ): void {
    if (!identity.verify(serialized, b64(k.signature))) {
      throw new InvalidKeyError(`invalid signature on ${what} ${k.id}`);
    }
  }

  private parse<T>(fn: () => T, what: string): T {
    try {
      return fn();
    } catch {
      throw new InvalidKeyError(`${what} is not a valid public key`);
    }
  }
}

function b64(s: string): Uint8Array<ArrayBuffer> {
  return toBytes(Buffer.from(s, 'base64'));
}

function toBytes(b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(new ArrayBuffer(b.length));
  out.set(b);
  return out;
}
