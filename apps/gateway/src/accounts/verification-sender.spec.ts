import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpHookVerificationSender, VerificationSendError } from './verification-sender';

// A real local HTTP server stands in for the SMS provider's endpoint.
let server: Server;
let url: string;
let status = 204;
const received: { body: unknown; auth?: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ body: JSON.parse(body), auth: req.headers.authorization });
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const message = {
  wa_id: '4915100000001',
  code: '123456',
  session_id: 's',
  expires_at: '2026-01-01T00:00:00Z',
};

describe('HttpHookVerificationSender', () => {
  it('POSTs the code as JSON with the bearer token', async () => {
    await new HttpHookVerificationSender(url, 'hook-token-0123456789').send(message);
    expect(received.at(-1)).toEqual({ body: message, auth: 'Bearer hook-token-0123456789' });
  });

  it('fails on a non-2xx answer and on an unreachable hook', async () => {
    status = 500;
    await expect(new HttpHookVerificationSender(url, undefined).send(message)).rejects.toBeInstanceOf(
      VerificationSendError,
    );
    await expect(
      new HttpHookVerificationSender('http://127.0.0.1:1/x', undefined, 500).send(message),
    ).rejects.toThrow(/unreachable/);
  });
});
