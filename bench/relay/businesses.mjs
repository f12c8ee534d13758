// The benchmark's businesses: one HTTP server for all webhooks (path per business, X-Hub-Signature-256
// checked over the raw body), set up through the operator API, sending through the Cloud API.
import { createHmac } from 'node:crypto';
import http from 'node:http';

/** Keep-alive connections, at most 128: at thousands of requests a second fetch() would open a socket each. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });

function request(url, method, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export class Businesses {
  constructor(relay, count) {
    this.relay = relay;
    this.list = Array.from({ length: count }, (_, i) => ({
      waba: `77${String(i).padStart(6, '0')}`,
      pnid: `155577${String(i).padStart(4, '0')}`,
      secret: '',
      token: '',
    }));
    this.onMessage = () => undefined;
    this.badSignatures = 0;
    this.accepted = new Map(); // body -> accept time
    this.early = new Map(); // body -> arrival time, when the device was faster than the API answer
    this.arrived = new Map(); // body -> count
    this.sent = 0;
    this.refused = 0;
    this.refusals = new Map();
    this.lastArrival = 0;
  }

  pnid(b) {
    return this.list[b].pnid;
  }

  async api(method, path, token, body) {
    const res = await request(
      `${this.relay.url(1)}${path}`,
      method,
      { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body === undefined ? undefined : JSON.stringify(body),
    );
    return { status: res.status, body: res.text ? JSON.parse(res.text) : undefined };
  }

  async setUp() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 60_000;
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    const port = this.server.address().port;
    const op = (m, p, b) => this.api(m, `/admin/v1${p}`, this.relay.operatorToken, b);
    for (const [i, b] of this.list.entries()) {
      const r = await op('POST', '/businesses', { waba_id: b.waba, name: `Bench ${i}` });
      if (r.status !== 201) throw new Error(`business: ${JSON.stringify(r.body)}`);
      b.secret = r.body.app_secret;
      await op('POST', `/businesses/${b.waba}/phone_numbers`, {
        phone_number_id: b.pnid,
        display_phone_number: `+1 555 77${String(i).padStart(4, '0')}`,
      });
      b.token = (await op('POST', `/businesses/${b.waba}/tokens`, {})).body.access_token;
      const w = await op('PUT', `/businesses/${b.waba}/webhook`, {
        callback_url: `http://127.0.0.1:${port}/wh/${i}`,
        verify_token: 'bench',
        max_concurrency: 64,
      });
      if (w.status !== 200) throw new Error(`webhook: ${JSON.stringify(w.body)}`);
      const reg = await this.api('POST', `/v23.0/${b.pnid}/register`, b.token, {
        messaging_product: 'whatsapp',
        pin: '123456',
      });
      if (reg.status !== 200) throw new Error(`register: ${JSON.stringify(reg.body)}`);
    }
  }

  handle(req, res) {
    const u = new URL(req.url, 'http://x');
    if (req.method === 'GET') return void res.writeHead(200).end(u.searchParams.get('hub.challenge') ?? '');
    const b = this.list[Number(u.pathname.split('/')[2])];
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const sig = `sha256=${createHmac('sha256', b.secret).update(raw).digest('hex')}`;
      if (req.headers['x-hub-signature-256'] !== sig) {
        this.badSignatures++;
        return void res.writeHead(401).end();
      }
      res.writeHead(200).end();
      const at = Date.now();
      for (const e of JSON.parse(raw.toString('utf8')).entry)
        for (const { value } of e.changes)
          for (const m of value.messages ?? []) this.onMessage(m.text?.body, at);
    });
  }

  /** Cloud API send of `o:<i>` to a user; the accept time is when the 200 answer arrives. */
  sendTo(waId, b, i) {
    const body = `o:${i}`;
    const biz = this.list[b];
    this.sent++;
    this.api('POST', `/v23.0/${biz.pnid}/messages`, biz.token, {
      messaging_product: 'whatsapp',
      to: waId,
      type: 'text',
      text: { body },
    }).then(
      (r) => {
        if (r.status !== 200) return this.refuse(`${r.status} ${r.body?.error?.code ?? ''}`);
        const at = Date.now();
        this.accepted.set(body, at);
        if (this.early.has(body)) this.hist.add(0);
      },
      (err) => this.refuse(err.message),
    );
  }

  refuse(why) {
    this.refused++;
    this.refusals.set(why, (this.refusals.get(why) ?? 0) + 1);
  }

  outboundArrived(body, at, hist) {
    this.hist = hist;
    const n = (this.arrived.get(body) ?? 0) + 1;
    this.arrived.set(body, n);
    if (n > 1) return;
    this.lastArrival = Math.max(this.lastArrival, at);
    const acc = this.accepted.get(body);
    if (acc === undefined) this.early.set(body, at);
    else hist.add(at - acc);
  }

  /** Sends whose API answer has not come back (queued on the 128 connections or in the relay). */
  unanswered() {
    return this.sent - this.accepted.size - this.refused;
  }

  pendingOut() {
    let n = 0;
    for (const body of this.accepted.keys()) if (!this.arrived.has(body)) n++;
    return n;
  }

  summary(hist, windowSecs) {
    const delivered = [...this.accepted.keys()].filter((b) => this.arrived.has(b)).length;
    return {
      attempted: this.sent,
      accepted: this.accepted.size,
      refused: this.refused,
      unanswered: this.unanswered(),
      refusals: Object.fromEntries(this.refusals),
      delivered,
      lost: this.accepted.size - delivered,
      duplicates: [...this.arrived.values()].reduce((a, n) => a + n - 1, 0),
      throughput: delivered / windowSecs,
      latencyMs: hist.summary(),
    };
  }

  close() {
    this.server?.closeAllConnections();
    return new Promise((r) => (this.server ? this.server.close(r) : r()));
  }
}
