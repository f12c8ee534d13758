import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { applyKeepAlive } from './keep-alive';

/** A real server and a real keep-alive client: which requests reuse the connection, and when it closes. */
async function withServer(idleMs: number | null, run: (port: number) => Promise<void>): Promise<void> {
  const server = http.createServer((_req, res) => res.end('ok'));
  if (idleMs !== null) applyKeepAlive(server, idleMs);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await run((server.address() as AddressInfo).port);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

function get(port: number, agent: http.Agent): Promise<{ socket: Socket; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ socket: req.socket as Socket, reused: req.reusedSocket }));
    });
    req.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('HTTP keep-alive of the services', () => {
  it('keeps an idle connection open for the configured time, then the server closes it', async () => {
    await withServer(1500, async (port) => {
      // A raw client: Node's Agent would close the connection itself, early, on the Keep-Alive hint.
      const socket = net.connect(port, '127.0.0.1');
      const responses: string[] = [];
      let ended = 0;
      socket.on('data', (d: Buffer) => responses.push(d.toString()));
      socket.on('end', () => (ended = Date.now()));
      const request = () => socket.write('GET / HTTP/1.1\r\nHost: relay\r\n\r\n');
      await new Promise((r) => socket.once('connect', r));
      request();
      await sleep(1000);
      request(); // 1 s idle: still open
      await sleep(200);
      const secondAt = Date.now() - 200;
      expect(responses.join('').match(/HTTP\/1\.1 200/g)).toHaveLength(2);
      expect(responses.join('')).toContain('Keep-Alive: timeout=1');
      await sleep(2500);
      // Closed by the server about 1.5 s after the second request (Node's own default is 5 s).
      expect(ended - secondAt).toBeGreaterThan(1200);
      expect(ended - secondAt).toBeLessThan(2600);
      socket.destroy();
    });
  });

  it('does not hold shutdown for kept-alive connections: a request in flight finishes, then it closes', async () => {
    const server = http.createServer((req, res) =>
      setTimeout(() => res.end('ok'), req.url === '/slow' ? 300 : 0),
    );
    applyKeepAlive(server, 65_000);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    await get(port, agent); // one connection idle
    const slow = new Promise<string>((resolve, reject) =>
      http
        .get({ host: '127.0.0.1', port, path: '/slow', agent }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(body));
        })
        .on('error', reject),
    );
    await sleep(50);
    const t0 = Date.now();
    const closed = new Promise<number>((r) => server.close(() => r(Date.now() - t0)));
    expect(await slow).toBe('ok');
    // Plain Node would wait for the in-flight request's connection to idle out: 65 s here.
    expect(await closed).toBeLessThan(2000);
    agent.destroy();
  });

  it('never shortens the header and request timeouts below the idle time', () => {
    const server = http.createServer();
    applyKeepAlive(server, 65_000);
    expect(server.keepAliveTimeout).toBe(65_000);
    expect(server.headersTimeout).toBeGreaterThan(65_000);
    expect(server.requestTimeout === 0 || server.requestTimeout >= server.headersTimeout).toBe(true);
  });
});
