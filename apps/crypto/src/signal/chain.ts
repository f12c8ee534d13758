import {
  CiphertextMessageType,
  ErrorCode,
  KEMPublicKey,
  LibSignalErrorBase,
  PreKeyBundle,
  PreKeySignalMessage,
  ProtocolAddress,
  PublicKey,
  SignalMessage,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from '@signalapp/libsignal-client';
import { ChainStores, MissingKeyError, ReplayedPreKeyError, type KeySource } from './stores';
import type { BundleInput, ChainJob, ChainOp, ChainResult, OpErrorCode, OpResult } from './protocol';

const bytes = (u: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(u);

/** Runs every operation of one session in order; a failed operation changes nothing. */
export async function runChain(job: ChainJob, keys: KeySource): Promise<ChainResult> {
  const stores = new ChainStores(job.identity, job.session, job.remoteIdentity, keys);
  const local = ProtocolAddress.new(job.local.name, job.local.deviceId);
  const remote = ProtocolAddress.new(job.remote.name, job.remote.deviceId);
  const results: OpResult[] = [];
  for (const op of job.ops) {
    stores.begin();
    try {
      const r = await runOp(op, stores, local, remote);
      const identityChanged = stores.commit();
      if (r.kind === 'decrypt') {
        const senderIdentity = stores.remoteIdentity?.serialize() ?? new Uint8Array();
        results.push({ ok: true, kind: 'decrypt', plaintext: r.plaintext, senderIdentity, identityChanged });
      } else if (r.kind === 'encrypt') {
        results.push({ ok: true, kind: 'encrypt', type: r.type, ciphertext: r.ciphertext });
      } else {
        results.push({ ok: true, kind: 'bundle', identityChanged });
      }
    } catch (err) {
      stores.begin();
      results.push({ ok: false, ...classify(err) });
    }
  }
  return {
    session: stores.session?.serialize() ?? null,
    sessionChanged: stores.sessionChanged,
    remoteIdentity: stores.remoteIdentity?.serialize() ?? null,
    results,
    removedPreKeys: [...stores.removedPreKeys],
    removedKyberPreKeys: [...stores.removedKyber],
    kyberTriples: stores.triples,
  };
}

type Done =
  | { kind: 'decrypt'; plaintext: Uint8Array }
  | { kind: 'encrypt'; type: 'prekey' | 'whisper'; ciphertext: Uint8Array }
  | { kind: 'bundle' };

class MalformedError extends Error {}

async function runOp(
  op: ChainOp,
  s: ChainStores,
  local: ProtocolAddress,
  remote: ProtocolAddress,
): Promise<Done> {
  switch (op.kind) {
    case 'decrypt': {
      if (op.type === 'prekey') {
        const msg = parse(() => PreKeySignalMessage.deserialize(bytes(op.ciphertext)));
        const plaintext = await signalDecryptPreKey(
          msg,
          remote,
          local,
          s.sessionStore,
          s.identityStore,
          s.preKeyStore,
          s.signedStore,
          s.kyberStore,
        );
        return { kind: 'decrypt', plaintext };
      }
      const msg = parse(() => SignalMessage.deserialize(bytes(op.ciphertext)));
      const plaintext = await signalDecrypt(msg, remote, local, s.sessionStore, s.identityStore);
      return { kind: 'decrypt', plaintext };
    }
    case 'encrypt': {
      const ct = await signalEncrypt(bytes(op.plaintext), remote, local, s.sessionStore, s.identityStore);
      const type = ct.type() === CiphertextMessageType.PreKey ? 'prekey' : 'whisper';
      return { kind: 'encrypt', type, ciphertext: ct.serialize() };
    }
    case 'bundle':
      await processPreKeyBundle(toBundle(op.bundle), remote, local, s.sessionStore, s.identityStore);
      return { kind: 'bundle' };
  }
}

function parse<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new MalformedError((err as Error).message);
  }
}

function toBundle(b: BundleInput): PreKeyBundle {
  return PreKeyBundle.new(
    b.registrationId,
    b.deviceId,
    b.preKey?.id ?? null,
    b.preKey ? PublicKey.deserialize(bytes(b.preKey.publicKey)) : null,
    b.signedPreKey.id,
    PublicKey.deserialize(bytes(b.signedPreKey.publicKey)),
    bytes(b.signedPreKey.signature),
    PublicKey.deserialize(bytes(b.identityKey)),
    b.kyberPreKey.id,
    KEMPublicKey.deserialize(bytes(b.kyberPreKey.publicKey)),
    bytes(b.kyberPreKey.signature),
  );
}

function classify(err: unknown): { error: OpErrorCode; detail: string } {
  const detail = String((err as Error)?.message ?? err).slice(0, 200);
  if (err instanceof MalformedError) return { error: 'malformed', detail };
  // libsignal wraps exceptions thrown by our stores into its own error, keeping the original name in the message.
  if (err instanceof ReplayedPreKeyError || detail.includes(ReplayedPreKeyError.name)) {
    return { error: 'replayed_prekey', detail };
  }
  if (err instanceof MissingKeyError) return { error: 'undecryptable', detail };
  if (err instanceof LibSignalErrorBase) {
    if (err.code === ErrorCode.DuplicatedMessage) return { error: 'duplicate', detail };
    if (err.code === ErrorCode.UntrustedIdentity) return { error: 'untrusted_identity', detail };
    if (err.code === ErrorCode.InvalidSession || /session.*not found|no session/i.test(detail)) {
      return { error: 'no_session', detail };
    }
  }
  return { error: 'undecryptable', detail };
}
