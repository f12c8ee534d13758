// Raw libsignal rate on one core (no database, no NATS): decrypts/s and encrypts/s of established
// sessions in memory, the same shape as the relay's work (a device's message to a business, and the
// business's message back). The crypto and relay benchmarks state their throughput as a fraction of these.
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const S = require('@signalapp/libsignal-client');
const PN = '15559990';

/**
 * D sessions, M messages each way per session, text bodies of bodyChars characters. `beforePhase` runs
 * before each timed phase (decrypt, then encrypt): rawRatesTogether lines its threads up there.
 */
export async function rawRates(D = 100, M = 20, bodyChars = 60, beforePhase = () => {}) {
  const body = 'x'.repeat(bodyChars);
  const plaintext = (i) =>
    JSON.stringify({ v: 1, sent_at: Date.now(), content: { type: 'text', text: { body: `${body} ${i}` } } });
  const mem = () => {
    const sessions = new Map();
    const ids = new Map();
    const pre = new Map();
    const signed = new Map();
    const kyber = new Map();
    const identity = S.IdentityKeyPair.generate();
    return {
      identity,
      session: new (class extends S.SessionStore {
        async saveSession(a, r) {
          sessions.set(a.toString(), r.serialize());
        }
        async getSession(a) {
          const s = sessions.get(a.toString());
          return s ? S.SessionRecord.deserialize(s) : null;
        }
        async getExistingSessions() {
          return [];
        }
      })(),
      ident: new (class extends S.IdentityKeyStore {
        async getIdentityKey() {
          return identity.privateKey;
        }
        async getLocalRegistrationId() {
          return 42;
        }
        async saveIdentity(a, k) {
          ids.set(a.toString(), k);
          return S.IdentityChange.NewOrUnchanged;
        }
        async isTrustedIdentity() {
          return true;
        }
        async getIdentity(a) {
          return ids.get(a.toString()) ?? null;
        }
      })(),
      pre: new (class extends S.PreKeyStore {
        async savePreKey(i, r) {
          pre.set(i, r.serialize());
        }
        async getPreKey(i) {
          return S.PreKeyRecord.deserialize(pre.get(i));
        }
        async removePreKey(i) {
          pre.delete(i);
        }
      })(),
      signed: new (class extends S.SignedPreKeyStore {
        async saveSignedPreKey(i, r) {
          signed.set(i, r.serialize());
        }
        async getSignedPreKey(i) {
          return S.SignedPreKeyRecord.deserialize(signed.get(i));
        }
      })(),
      kyber: new (class extends S.KyberPreKeyStore {
        async saveKyberPreKey(i, r) {
          kyber.set(i, r.serialize());
        }
        async getKyberPreKey(i) {
          return S.KyberPreKeyRecord.deserialize(kyber.get(i));
        }
        async markKyberPreKeyUsed() {}
      })(),
    };
  };
  const biz = mem();
  const bizAddr = S.ProtocolAddress.new(PN, 1);
  const spk = S.PrivateKey.generate();
  const spkSig = biz.identity.privateKey.sign(spk.getPublicKey().serialize());
  await biz.signed.saveSignedPreKey(
    1,
    S.SignedPreKeyRecord.new(1, Date.now(), spk.getPublicKey(), spk, spkSig),
  );
  const kp = S.KEMKeyPair.generate();
  const kSig = biz.identity.privateKey.sign(kp.getPublicKey().serialize());
  await biz.kyber.saveKyberPreKey(1, S.KyberPreKeyRecord.new(1, Date.now(), kp, kSig));
  const bundle = S.PreKeyBundle.new(
    42,
    1,
    null,
    null,
    1,
    spk.getPublicKey(),
    spkSig,
    biz.identity.publicKey,
    1,
    kp.getPublicKey(),
    kSig,
  );
  const users = [];
  for (let i = 0; i < D; i++) {
    const u = mem();
    const addr = S.ProtocolAddress.new(`49180${String(i).padStart(7, '0')}`, 1);
    await S.processPreKeyBundle(bundle, bizAddr, addr, u.session, u.ident);
    const c = await S.signalEncrypt(Buffer.from(plaintext(0)), bizAddr, addr, u.session, u.ident);
    await S.signalDecryptPreKey(
      S.PreKeySignalMessage.deserialize(c.serialize()),
      addr,
      bizAddr,
      biz.session,
      biz.ident,
      biz.pre,
      biz.signed,
      biz.kyber,
    );
    const r = await S.signalEncrypt(Buffer.from(plaintext(0)), addr, bizAddr, biz.session, biz.ident);
    await S.signalDecrypt(S.SignalMessage.deserialize(r.serialize()), bizAddr, addr, u.session, u.ident);
    users.push({ u, addr });
  }
  const cts = [];
  for (const { u, addr } of users)
    for (let j = 0; j < M; j++)
      cts.push({
        addr,
        c: (await S.signalEncrypt(Buffer.from(plaintext(j)), bizAddr, addr, u.session, u.ident)).serialize(),
      });
  const cpu = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  beforePhase();
  let t = process.hrtime.bigint();
  let c0 = cpu();
  for (const { addr, c } of cts)
    await S.signalDecrypt(S.SignalMessage.deserialize(c), addr, bizAddr, biz.session, biz.ident);
  const dec = cts.length / (Number(process.hrtime.bigint() - t) / 1e9);
  const decCpuUs = (cpu() - c0) / cts.length;
  beforePhase();
  t = process.hrtime.bigint();
  c0 = cpu();
  for (const { addr } of users)
    for (let j = 0; j < M; j++)
      await S.signalEncrypt(Buffer.from(plaintext(j)), addr, bizAddr, biz.session, biz.ident);
  const enc = (D * M) / (Number(process.hrtime.bigint() - t) / 1e9);
  const encCpuUs = (cpu() - c0) / (D * M);
  return { dec, enc, decCpuUs, encCpuUs };
}

/**
 * The same work on `threads` threads at once, each phase started together: the machine's whole libsignal
 * capacity. On a VM whose vCPUs share a physical core or its caches, this can be far below `threads`
 * times the one-thread rate (each thread's operations cost more CPU while the others run; on the 2-vCPU
 * VM of docs/performance.md it ranged from 0.6x to 2x one thread's rate). Totals are all
 * threads' operations over the slowest thread's time; CPU figures are not given (the threads share one
 * process's counters).
 */
export async function rawRatesTogether(threads = availableParallelism(), D = 100, M = 20, bodyChars = 60) {
  const sab = new SharedArrayBuffer(4);
  const results = await Promise.all(
    Array.from({ length: threads }, () => {
      const w = new Worker(new URL(import.meta.url), { workerData: { sab, threads, D, M, bodyChars } });
      return new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
    }),
  );
  const slowest = (k) => Math.min(...results.map((r) => r[k]));
  return { threads, dec: threads * slowest('dec'), enc: threads * slowest('enc') };
}

if (!isMainThread && workerData?.sab) {
  const { sab, threads, D, M, bodyChars } = workerData;
  const arrived = new Int32Array(sab);
  let phase = 0;
  // A barrier: every thread has finished its setup (or its previous phase) before any starts timing.
  const barrier = () => {
    phase++;
    Atomics.add(arrived, 0, 1);
    Atomics.notify(arrived, 0);
    for (let v = Atomics.load(arrived, 0); v < phase * threads; v = Atomics.load(arrived, 0))
      Atomics.wait(arrived, 0, v, 1000);
  };
  // A new thread's first run is slow (cold JIT): one untimed run first, as the one-thread rate has had.
  rawRates(D, M, bodyChars)
    .then(() => rawRates(D, M, bodyChars))
    .then(() => rawRates(D, M, bodyChars, barrier))
    .then((r) => parentPort.postMessage(r));
}
