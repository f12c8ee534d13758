import type { Server } from 'node:http';

/**
 * How long an idle keep-alive connection stays open. Node closes it after 5 s; a client or load
 * balancer that reuses a pooled connection just as the server closes it gets "socket hang up" or a
 * 502 for a request the service never saw. Keeping it above the balancer's idle timeout (AWS ALB: 60 s)
 * leaves closing idle connections to the client side, where it is safe.
 */
export function applyKeepAlive(server: Server, idleMs: number): void {
  server.keepAliveTimeout = idleMs;
  // Headers of a request on a kept-alive connection must be allowed at least as long (Node's guidance).
  server.headersTimeout = Math.max(server.headersTimeout, idleMs + 1000);
  if (server.requestTimeout > 0)
    server.requestTimeout = Math.max(server.requestTimeout, server.headersTimeout);
  // close() waits for every connection to end, and one that was serving a request when it was called
  // is then kept alive for idleMs: shutdown would hang that long. While closing, a connection is closed
  // as soon as it goes idle (its response sent).
  const close = server.close.bind(server);
  server.close = ((done?: (err?: Error) => void) => {
    const timer = setInterval(() => server.closeIdleConnections(), 50);
    timer.unref();
    return close((err?: Error) => {
      clearInterval(timer);
      done?.(err);
    });
  }) as Server['close'];
}
