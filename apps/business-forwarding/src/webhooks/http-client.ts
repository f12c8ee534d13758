import http from 'node:http';
import https from 'node:https';

export interface WebhookResponse {
  status: number;
}

/** The one outbound HTTP call of the service (webhook POSTs and the subscription handshake). */
export interface WebhookHttpClient {
  post(
    url: string,
    body: Buffer,
    headers: Record<string, string>,
    timeoutMs: number,
  ): Promise<WebhookResponse>;
  get(url: string, timeoutMs: number): Promise<{ status: number; body: string }>;
}

const MAX_RESPONSE = 64 * 1024;

/** node:http(s) with keep-alive, an exact Content-Length and a hard timeout per request. */
export class NodeWebhookHttpClient implements WebhookHttpClient {
  private readonly agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 1024 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 1024 }),
  };

  post(url: string, body: Buffer, headers: Record<string, string>, timeoutMs: number) {
    return this.send(
      url,
      'POST',
      timeoutMs,
      { ...headers, 'Content-Length': String(body.length) },
      body,
    ).then((r) => ({ status: r.status }));
  }

  get(url: string, timeoutMs: number) {
    return this.send(url, 'GET', timeoutMs, {});
  }

  private send(
    url: string,
    method: string,
    timeoutMs: number,
    headers: Record<string, string>,
    body?: Buffer,
  ): Promise<{ status: number; body: string }> {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const agent = u.protocol === 'https:' ? this.agents.https : this.agents.http;
    return new Promise((resolve, reject) => {
      const req = mod.request(u, { method, headers, agent, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= MAX_RESPONSE) chunks.push(c);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      });
      const timer = setTimeout(() => req.destroy(new Error(`timeout after ${timeoutMs} ms`)), timeoutMs);
      req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.on('close', () => clearTimeout(timer));
      req.end(body);
    });
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}
