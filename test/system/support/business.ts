/**
 * A business as it integrates with the relay: a real HTTP webhook endpoint that answers Meta's GET
 * handshake and accepts a POST only with a valid X-Hub-Signature-256 over the raw body, set up through
 * business-forwarding's operator API, sending through the Cloud API.
 */
import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Relay } from './relay';

export interface InboundMessage {
  id: string;
  from: string;
  profileName?: string;
  text?: string;
}
export interface StatusEvent {
  id: string;
  status: string;
  recipient: string;
}

interface Change {
  value: {
    contacts?: { wa_id: string; profile?: { name?: string } }[];
    messages?: { id: string; from: string; text?: { body: string } }[];
    statuses?: { id: string; status: string; recipient_id: string }[];
  };
}

export class WebhookBusiness {
  readonly messages: InboundMessage[] = [];
  readonly statuses: StatusEvent[] = [];
  badSignatures = 0;
  /** When set, POSTs are answered 503 (the relay must retry). */
  down = false;
  private server?: http.Server;
  readonly verifyToken = randomBytes(8).toString('hex');
  appSecret = '';
  token = '';
  readonly waba = `${1000 + Math.floor(Math.random() * 8999)}${Date.now() % 1e8}`;
  readonly pnid = `${2000 + Math.floor(Math.random() * 7999)}${Date.now() % 1e8}`;

  async listen(): Promise<string> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}/webhook`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }

  /** Business, registered number, access token and webhook, through the operator and Cloud APIs. */
  async setUp(relay: Relay): Promise<void> {
    const url = await this.listen();
    const b = await relay.admin('POST', '/businesses', { waba_id: this.waba, name: 'System Test Shop' });
    if (b.status !== 201) throw new Error(`create business: ${JSON.stringify(b.body)}`);
    this.appSecret = b.body.app_secret;
    const n = await relay.admin('POST', `/businesses/${this.waba}/phone_numbers`, {
      phone_number_id: this.pnid,
      display_phone_number: '+1 555 0100',
      verified_name: 'System Test Shop',
    });
    if (n.status !== 201) throw new Error(`add number: ${JSON.stringify(n.body)}`);
    const t = await relay.admin('POST', `/businesses/${this.waba}/tokens`, { label: 'system' });
    this.token = t.body.access_token;
    const w = await relay.admin('PUT', `/businesses/${this.waba}/webhook`, {
      callback_url: url,
      verify_token: this.verifyToken,
    });
    if (w.status !== 200) throw new Error(`webhook: ${JSON.stringify(w.body)}`);
    const r = await relay.cloud(this.token, 'POST', `/${this.pnid}/register`, {
      messaging_product: 'whatsapp',
      pin: '123456',
    });
    if (r.status !== 200) throw new Error(`register: ${JSON.stringify(r.body)}`);
  }

  /** Cloud API send; answers the wamid, or throws with the refusal. */
  async sendText(relay: Relay, to: string, body: string): Promise<string> {
    const r = await relay.cloud(this.token, 'POST', `/${this.pnid}/messages`, {
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to,
      type: 'text',
      text: { body },
    });
    if (r.status !== 200) throw new Error(`send ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body.messages[0].id as string;
  }

  statusesOf(wamid: string): string[] {
    return this.statuses.filter((s) => s.id === wamid).map((s) => s.status);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const u = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET') {
      const ok =
        u.searchParams.get('hub.mode') === 'subscribe' &&
        u.searchParams.get('hub.verify_token') === this.verifyToken;
      res.writeHead(ok ? 200 : 403).end(ok ? (u.searchParams.get('hub.challenge') ?? '') : 'bad token');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (this.down) return void res.writeHead(503).end();
      const raw = Buffer.concat(chunks);
      const expected = `sha256=${createHmac('sha256', this.appSecret).update(raw).digest('hex')}`;
      if (req.headers['x-hub-signature-256'] !== expected) {
        this.badSignatures++;
        return void res.writeHead(401).end();
      }
      this.record(JSON.parse(raw.toString('utf8')) as { entry: { changes: Change[] }[] });
      res.writeHead(200).end();
    });
  }

  private record(body: { entry: { changes: Change[] }[] }): void {
    for (const entry of body.entry)
      for (const { value } of entry.changes) {
        const names = new Map((value.contacts ?? []).map((c) => [c.wa_id, c.profile?.name]));
        for (const m of value.messages ?? [])
          this.messages.push({ id: m.id, from: m.from, profileName: names.get(m.from), text: m.text?.body });
        for (const s of value.statuses ?? [])
          this.statuses.push({ id: s.id, status: s.status, recipient: s.recipient_id });
      }
  }
}
