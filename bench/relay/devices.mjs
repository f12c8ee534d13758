// The benchmark's users: D devices on the device SDK (real keys, Signal sessions, WebSocket), with
// their inbound messages encrypted before the timed window.
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const { DeviceClient } = require(join(root, 'dist/libs/device-sdk/src/index.js'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The bench keeps device state in memory only (the SDK's stores would serialise it on every message). */
const nullStore = () => ({ load: async () => null, save: async () => undefined });

async function pool(n, concurrency, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

export class Devices {
  constructor(server, count, hook) {
    this.server = server;
    this.count = count;
    this.hook = hook;
    this.list = [];
    this.onOutbound = () => undefined;
    this.sentAt = new Map(); // body -> send time
    this.accepted = new Set();
    this.arrived = new Map(); // body -> count
    this.refused = 0;
    this.hellos = 0;
    this.lastArrival = 0;
  }

  waIdOf(i) {
    return this.list[i % this.count].waId;
  }
  businessOf(i) {
    return (i % this.count) % this.nBiz;
  }

  async register() {
    await pool(this.count, 10, async (i) => {
      const waId = `4917${String(i).padStart(8, '0')}`;
      const client = await DeviceClient.open({ store: nullStore(), server: this.server, prekeyBatch: 5 });
      const s = await client.startVerification(waId);
      await client.register(s.session_id, await this.hook.code(s.session_id), `User ${i}`);
      client.on('message', (m) => this.onOutbound(m.content.text?.body, Date.now()));
      await client.connect();
      this.list[i] = { index: i, waId, client, queue: [], sent: 0 };
    });
  }

  async openSessions(biz) {
    this.nBiz = biz.list.length;
    biz.onMessage = (body) => body === 'hello' && this.hellos++;
    await pool(this.count, 20, (i) => this.list[i].client.sendText(biz.pnid(i % this.nBiz), 'hello'));
    for (let t = 0; this.hellos < this.count; t++) {
      if (t > 600) throw new Error(`only ${this.hellos}/${this.count} first messages arrived`);
      await sleep(100);
    }
  }

  async preEncrypt(biz, perDevice) {
    for (const [d, dev] of this.list.entries())
      for (let j = 0; j < perDevice; j++) {
        const body = `i:${d}:${j}`;
        dev.queue.push(await dev.client.encrypt(biz.pnid(d % this.nBiz), { type: 'text', text: { body } }));
      }
  }

  sendNext(i) {
    const dev = this.list[i % this.count];
    const frame = dev.queue.shift();
    if (!frame) return;
    // Frames leave in the order they were encrypted: the n-th one sent carries body i:<device>:<n>.
    const key = `i:${dev.index}:${dev.sent++}`;
    this.sentAt.set(key, Date.now());
    dev.client.request(frame).then(
      () => this.accepted.add(key),
      () => this.refused++,
    );
  }

  inboundArrived(body, at, hist) {
    if (!body?.startsWith('i:')) return;
    const n = (this.arrived.get(body) ?? 0) + 1;
    this.arrived.set(body, n);
    if (n > 1) return;
    this.lastArrival = Math.max(this.lastArrival, at);
    const sent = this.sentAt.get(body);
    if (sent !== undefined) hist.add(at - sent);
  }

  pendingIn() {
    let n = 0;
    for (const body of this.accepted) if (!this.arrived.has(body)) n++;
    return n;
  }

  summary(hist, windowSecs) {
    const delivered = [...this.accepted].filter((b) => this.arrived.has(b)).length;
    return {
      attempted: this.sentAt.size,
      accepted: this.accepted.size,
      refused: this.refused,
      delivered,
      lost: this.accepted.size - delivered,
      duplicates: [...this.arrived.values()].reduce((a, n) => a + n - 1, 0),
      throughput: delivered / windowSecs,
      latencyMs: hist.summary(),
    };
  }

  async close() {
    await Promise.all(this.list.map((d) => d?.client.close()));
  }
}
