import { parentPort } from 'node:worker_threads';
import { runChain } from './chain';
import { generateKeys } from './keygen';
import type { FromWorker, KeyReply, KeyRequest, ToWorker } from './protocol';

/**
 * Worker-thread entry: all libsignal work happens here so the main thread's event loop stays free.
 * Several jobs may be in flight: while one awaits key material from the main thread, another runs.
 */
const port = parentPort;
if (!port) throw new Error('worker.ts must run in a worker thread');

const pending = new Map<number, (reply: KeyReply) => void>();
let nextReq = 1;
// Results leave in batches too: everything finished in one turn of the worker's loop, one message.
let outgoing: FromWorker[] = [];
const post = (m: FromWorker) => {
  outgoing.push(m);
  if (outgoing.length > 1) return;
  setImmediate(() => {
    const batch = outgoing;
    outgoing = [];
    port.postMessage(batch);
  });
};

port.on('message', (batch: ToWorker[]) => batch.forEach(handle));

function handle(msg: ToWorker): void {
  if (msg.type === 'key') {
    pending.get(msg.reqId)?.(msg.reply);
    pending.delete(msg.reqId);
    return;
  }
  const id = msg.id;
  const run = async (): Promise<unknown> => {
    if (msg.type === 'keygen') return generateKeys(msg.job);
    return runChain(msg.job, (request: KeyRequest) => {
      const reqId = nextReq++;
      return new Promise<KeyReply>((resolve) => {
        pending.set(reqId, resolve);
        post({ type: 'need', id, reqId, request });
      });
    });
  };
  run().then(
    (result) => post({ type: 'done', id, result }),
    (err: Error) => post({ type: 'failed', id, message: err?.message ?? String(err) }),
  );
}
