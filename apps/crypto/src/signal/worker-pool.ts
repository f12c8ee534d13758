import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type {
  ChainJob,
  ChainResult,
  FromWorker,
  KeyReply,
  KeyRequest,
  KeygenJob,
  KeygenResult,
  ToWorker,
} from './protocol';

/** The port the services use for libsignal work (tests and the benchmark use the same pool). */
export interface SignalEngine {
  runChain(job: ChainJob, keys: (req: KeyRequest) => Promise<KeyReply>): Promise<ChainResult>;
  keygen(job: KeygenJob): Promise<KeygenResult>;
  close(): Promise<void>;
}

export class SignalWorkerError extends Error {
  override readonly name = 'SignalWorkerError';
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  keys?: (req: KeyRequest) => Promise<KeyReply>;
  keyError?: Error;
}

interface Slot {
  worker: Worker;
  jobs: Set<number>;
  /** Messages posted together at the end of the current microtask (one structured clone, one wake-up). */
  outbox: ToWorker[];
}

/**
 * Worker threads load plain JavaScript, so the entry is always the compiled worker in dist/ (next to this
 * file when running from dist; under Jest, which runs the TypeScript sources, the built copy that
 * `npm test` produces first).
 */
export function workerEntry(): string {
  if (__filename.endsWith('.js')) return join(__dirname, 'worker.js');
  const built = join(__dirname, '../../../../dist/apps/crypto/src/signal/worker.js');
  if (!existsSync(built)) throw new SignalWorkerError(`${built} is missing: run npm run build`);
  return built;
}

/** A fixed pool of libsignal worker threads; jobs go to the least busy worker. */
export class SignalWorkerPool implements SignalEngine {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(
    size: number,
    private readonly entry = workerEntry(),
  ) {
    for (let i = 0; i < Math.max(1, size); i++) this.slots.push(this.spawn());
  }

  get size(): number {
    return this.slots.length;
  }

  runChain(job: ChainJob, keys: (req: KeyRequest) => Promise<KeyReply>): Promise<ChainResult> {
    return this.submit((id) => ({ type: 'chain', id, job }), keys) as Promise<ChainResult>;
  }

  keygen(job: KeygenJob): Promise<KeygenResult> {
    return this.submit((id) => ({ type: 'keygen', id, job })) as Promise<KeygenResult>;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private submit(build: (id: number) => ToWorker, keys?: Pending['keys']): Promise<unknown> {
    if (this.closed) return Promise.reject(new SignalWorkerError('worker pool closed'));
    const id = this.nextId++;
    const slot = this.slots.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, keys });
      slot.jobs.add(id);
      this.post(slot, build(id));
    });
  }

  /** A batch's chains are submitted in one go: they cross to the worker as one message. */
  private post(slot: Slot, m: ToWorker): void {
    slot.outbox.push(m);
    if (slot.outbox.length > 1) return;
    queueMicrotask(() => {
      const batch = slot.outbox;
      slot.outbox = [];
      slot.worker.postMessage(batch);
    });
  }

  private spawn(): Slot {
    const slot: Slot = { worker: new Worker(this.entry), jobs: new Set(), outbox: [] };
    slot.worker.on('message', (batch: FromWorker[]) => batch.forEach((m) => this.onMessage(slot, m)));
    slot.worker.on('error', (err) => this.fail(slot, err));
    slot.worker.on('exit', (code) => {
      this.fail(slot, new SignalWorkerError(`signal worker exited (${code})`));
      if (!this.closed) this.slots[this.slots.indexOf(slot)] = this.spawn();
    });
    slot.worker.unref();
    return slot;
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === 'need') {
      const fetch = p.keys ?? (() => Promise.reject(new SignalWorkerError('no key source')));
      fetch(m.request)
        .catch((err: Error) => {
          // A database error must fail the whole job (retry later), not look like a missing key.
          p.keyError = err;
          return { kind: 'record', record: null } as KeyReply;
        })
        .then((reply) => this.post(slot, { type: 'key', id: m.id, reqId: m.reqId, reply }));
      return;
    }
    this.pending.delete(m.id);
    slot.jobs.delete(m.id);
    if (p.keyError) p.reject(p.keyError);
    else if (m.type === 'done') p.resolve(m.result);
    else p.reject(new SignalWorkerError(m.message));
  }

  private fail(slot: Slot, err: Error): void {
    for (const id of slot.jobs) {
      this.pending.get(id)?.reject(err);
      this.pending.delete(id);
    }
    slot.jobs.clear();
  }
}
