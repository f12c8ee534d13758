/**
 * Messages between the main thread and the libsignal worker threads. Only plain data crosses the thread
 * boundary (native libsignal handles are not transferable): serialized records, keys and ciphertexts.
 */

export interface Address {
  name: string;
  deviceId: number;
}

/** The business number's identity as the worker needs it for one job. */
export interface LocalIdentity {
  privateKey: Uint8Array;
  registrationId: number;
}

/** A device's prekey bundle in libsignal's shape (bytes already decoded from base64). */
export interface BundleInput {
  registrationId: number;
  deviceId: number;
  identityKey: Uint8Array;
  signedPreKey: { id: number; publicKey: Uint8Array; signature: Uint8Array };
  preKey?: { id: number; publicKey: Uint8Array };
  kyberPreKey: { id: number; publicKey: Uint8Array; signature: Uint8Array };
}

export type ChainOp =
  | { kind: 'decrypt'; type: 'prekey' | 'whisper'; ciphertext: Uint8Array }
  | { kind: 'encrypt'; plaintext: Uint8Array }
  | { kind: 'bundle'; bundle: BundleInput };

/** All operations on one session, run in order on one worker against the loaded state. */
export interface ChainJob {
  local: Address;
  remote: Address;
  identity: LocalIdentity;
  session: Uint8Array | null;
  remoteIdentity: Uint8Array | null;
  ops: ChainOp[];
}

export type OpErrorCode =
  'malformed' | 'duplicate' | 'undecryptable' | 'untrusted_identity' | 'replayed_prekey' | 'no_session';

export interface KyberTriple {
  kyberId: number;
  signedId: number;
  baseKey: Uint8Array;
}

export type OpResult =
  | {
      ok: true;
      kind: 'decrypt';
      plaintext: Uint8Array;
      /** The sender identity key in force after this message. */
      senderIdentity: Uint8Array;
      identityChanged: boolean;
    }
  | { ok: true; kind: 'encrypt'; type: 'prekey' | 'whisper'; ciphertext: Uint8Array }
  | { ok: true; kind: 'bundle'; identityChanged: boolean }
  | { ok: false; error: OpErrorCode; detail: string };

/** New state after the chain; the main thread commits it (or nothing) in one transaction. */
export interface ChainResult {
  session: Uint8Array | null;
  sessionChanged: boolean;
  remoteIdentity: Uint8Array | null;
  results: OpResult[];
  removedPreKeys: number[];
  /** One-time Kyber prekeys used (removed) and last-resort triples to record. */
  removedKyberPreKeys: number[];
  kyberTriples: KyberTriple[];
}

/** Key material the worker asks for while libsignal runs (prekey messages only). */
export type KeyRequest =
  | { kind: 'signed'; id: number }
  | { kind: 'prekey'; id: number }
  | { kind: 'kyber'; id: number }
  | { kind: 'triple'; triple: KyberTriple };

export type KeyReply =
  { kind: 'record'; record: Uint8Array | null; lastResort?: boolean } | { kind: 'triple'; used: boolean };

/** Fresh keys for a number (provisioning, refill, rotation): private parts in records, public for bundles. */
export interface KeygenJob {
  identity?: true;
  /** Existing identity private key (refill/rotation sign with it). */
  identityKey?: Uint8Array;
  preKeyIds: number[];
  kyberIds: number[];
  signedId?: number;
  lastResortId?: number;
}

export interface GeneratedKey {
  id: number;
  publicKey: Uint8Array;
  signature?: Uint8Array;
  record: Uint8Array;
}

export interface KeygenResult {
  identityPrivate?: Uint8Array;
  identityPublic?: Uint8Array;
  registrationId?: number;
  preKeys: GeneratedKey[];
  kyber: GeneratedKey[];
  signed?: GeneratedKey;
  lastResort?: GeneratedKey;
}

export type ToWorker =
  | { type: 'chain'; id: number; job: ChainJob }
  | { type: 'keygen'; id: number; job: KeygenJob }
  | { type: 'key'; id: number; reqId: number; reply: KeyReply };

export type FromWorker =
  | { type: 'done'; id: number; result: unknown }
  | { type: 'failed'; id: number; message: string }
  | { type: 'need'; id: number; reqId: number; request: KeyRequest };
