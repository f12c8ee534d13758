/**
 * A real webhook endpoint for tests (not a test file itself): answers Meta's GET handshake, verifies
 * X-Hub-Signature-256 over the raw bytes it received, and can be down, hanging or slow on demand.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  raw: Buffer;
  json: Record<string, unknown>;
  signatureValid: boolean;
  contentLength: number;
}

/** A real webhook endpoint: verifies the handshake and X-Hub-Signature-256 over the raw bytes. */
export class WebhookReceiver {
  readonly received: Received[] = [];
  mode: 'up' | 'down' | 'hang' = 'up';
  delayMs = 0;
  inFlight = 0;
  maxInFlight = 0;
  private server?: http.Server;

  constructor(
    public appSecret: string,
    readonly verifyToken = 'verify-me',
  ) {}

  async start(port = 0): Promise<string> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server?.listen(port, '127.0.0.1', r));
    return this.url;
  }

  get url(): string {
    const a = this.server?.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}/webhook`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  /** Envelopes that arrived with a valid signature and a 2xx answer. */
  get accepted(): Received[] {
    return this.received.filter((r) => r.signatureValid);
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
      if (this.mode === 'hang') return; // never answers: the sender's timeout must fire
      if (this.mode === 'down') {
        res.writeHead(503).end();
        return;
      }
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      setTimeout(() => {
        this.inFlight--;
        const raw = Buffer.concat(chunks);
        const expected = `sha256=${createHmac('sha256', this.appSecret).update(raw).digest('hex')}`;
        const signatureValid = req.headers['x-hub-signature-256'] === expected;
        this.received.push({
          raw,
          json: JSON.parse(raw.toString('utf8')) as Record<string, unknown>,
          signatureValid,
          contentLength: Number(req.headers['content-length']),
        });
        res.writeHead(signatureValid ? 200 : 401).end();
      }, this.delayMs);
    });
  }
}

/** Every change value of a POST (a batched POST carries several entries), in body order. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- envelopes are asserted field by field
export const valuesOf = (r: Received): any[] =>
  (r.json as { entry: { changes: { value: unknown }[] }[] }).entry.flatMap((e) =>
    e.changes.map((c) => c.value),
  );

/** The single change value of an envelope. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- envelopes are asserted field by field
export const valueOf = (r: Received): any =>
  (r.json as { entry: { changes: { value: unknown }[] }[] }).entry[0].changes[0].value;
