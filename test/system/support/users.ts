/**
 * Users' phones: the device SDK (real keys, Signal sessions, WebSocket) registered through the
 * gateway's verification flow. The SMS provider is a real HTTP hook here that keeps the codes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeviceClient, MemoryStateStore, type IncomingMessage } from '@relay/device-sdk';
import { waitFor } from '@relay/testing';

export const HOOK_TOKEN = 'system-test-hook-token-0123456789';

/** The SMS adapter: receives {session_id, code} POSTs from the gateway. */
export class CodeHook {
  private readonly codes = new Map<string, string>();
  private server?: http.Server;

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.headers.authorization !== `Bearer ${HOOK_TOKEN}`) return void res.writeHead(401).end();
        const m = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { session_id: string; code: string };
        this.codes.set(m.session_id, m.code);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}/sms`;
  }

  codeFor(sessionId: string): Promise<string> {
    return waitFor(() => this.codes.get(sessionId), 10_000) as Promise<string>;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

/** One device of a user, with everything it decrypted. */
export class Phone {
  readonly inbox: IncomingMessage[] = [];
  /** Envelopes the relay reported it could not process. */
  readonly failures: unknown[] = [];
  readonly store = new MemoryStateStore();
  client!: DeviceClient;

  constructor(
    readonly waId: string,
    readonly name: string,
  ) {}

  async register(server: string, hook: CodeHook): Promise<this> {
    this.client = await DeviceClient.open({
      store: this.store,
      server,
      prekeyBatch: 20,
      profileName: this.name,
    });
    const s = await this.client.startVerification(this.waId);
    await this.client.register(s.session_id, await hook.codeFor(s.session_id), this.name);
    this.client.on('message', (m) => this.inbox.push(m));
    this.client.on('failure', (f) => this.failures.push(f));
    return this;
  }

  connect(): Promise<void> {
    return this.client.connect();
  }

  /** Reopens the device from its saved state (as an app restart would) and connects. */
  async reopen(): Promise<void> {
    this.client = await DeviceClient.open({ store: this.store, prekeyBatch: 20, profileName: this.name });
    this.client.on('message', (m) => this.inbox.push(m));
    await this.client.connect();
  }

  /** Sends a text; the SDK adds the user's profile name. */
  sendText(pnid: string, body: string): Promise<{ envelope_id: string; duplicate: boolean }> {
    return this.client.sendText(pnid, body);
  }

  texts(): string[] {
    return this.inbox.map((m) => (m.content.type === 'text' ? m.content.text.body : `<${m.content.type}>`));
  }
}
