import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { Gauge, type Registry } from 'prom-client';
import { APP_CONFIG, APP_LOGGER, METRICS_REGISTRY } from '@relay/platform';
import { DEVICE_CLOSE_CODES } from '@relay/protocol';
import type { GatewayConfig } from '../config';
import { GatewayError } from '../http/gateway-error';
import { clientIp } from '../http/ip-rate-limit.guard';
import { DeviceAuthService, type AuthenticatedDevice } from '../auth/device-auth.service';
import { RateLimiter } from '../ratelimit/rate-limiter';
import { DeliveryService } from '../delivery/delivery.service';
import { ConnectionRegistry } from './connection-registry';
import { DeviceConnection } from './device-connection';
import { FrameRouter } from './frame-router';

export const WS_PATH = '/v1/websocket';

/** The authenticated device WebSocket, on the same HTTP server as the REST API. */
@Injectable()
export class DeviceWebSocketServer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly wss: WebSocketServer;
  private heartbeat?: NodeJS.Timeout;

  constructor(
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
    @Inject(DeviceAuthService) private readonly auth: DeviceAuthService,
    @Inject(RateLimiter) private readonly limiter: RateLimiter,
    @Inject(ConnectionRegistry) private readonly registry: ConnectionRegistry,
    @Inject(FrameRouter) private readonly router: FrameRouter,
    @Inject(DeliveryService) private readonly delivery: DeliveryService,
    @Inject(APP_CONFIG) private readonly config: GatewayConfig,
    @Inject(APP_LOGGER) private readonly log: Logger,
    @Inject(METRICS_REGISTRY) metrics: Registry,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.WS_MAX_FRAME_BYTES,
      perMessageDeflate: false,
    });
    const connections = this.registry;
    new Gauge({
      name: 'relay_gateway_connections',
      help: 'Device WebSocket connections held by this replica',
      registers: [metrics],
      collect() {
        this.set(connections.size);
      },
    });
  }

  onApplicationBootstrap(): void {
    const server = this.adapterHost.httpAdapter.getHttpServer() as Server;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      this.upgrade(req, socket, head).catch((err: unknown) => {
        const e = err instanceof GatewayError ? err : new GatewayError('internal', 'internal error');
        if (!(err instanceof GatewayError)) this.log.error({ err: (err as Error).message }, 'upgrade failed');
        rejectUpgrade(socket, e);
      });
    });
    this.heartbeat = setInterval(() => {
      for (const c of this.registry.all()) c.ping();
    }, this.config.WS_HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path !== WS_PATH) throw new GatewayError('not_found', 'no such endpoint');
    await this.limiter.consume('ip', clientIp(req, this.config.TRUST_PROXY));
    const device = await this.auth.authenticate(req.headers.authorization);
    const epoch = await this.auth.connected(device);
    if (socket.destroyed) return;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      // Past the handshake an HTTP error response would corrupt the WebSocket stream: close it instead.
      try {
        this.accept(ws, device, epoch);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'could not set up a device connection');
        ws.close(1011, 'internal error');
      }
    });
  }

  private accept(ws: WebSocket, device: AuthenticatedDevice, epoch: number): void {
    const conn = new DeviceConnection(
      device,
      epoch,
      ws,
      this.config.WS_MAX_BUFFERED_BYTES,
      this.config.RATE_LIMIT_CONNECTION_FRAMES,
    );
    ws.on('error', (err) => this.log.debug({ err: err.message, device: conn.key }, 'websocket error'));
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        conn.send({
          type: 'error',
          id: null,
          code: 'binary_not_supported',
          message: 'frames must be JSON text',
        });
        return;
      }
      this.router.handle(conn, data.toString());
    });
    if (!this.registry.add(conn)) return;
    this.delivery.start(conn);
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const c of this.registry.all()) c.close(DEVICE_CLOSE_CODES.GOING_AWAY, 'server shutting down');
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

const REASONS: Record<number, string> = {
  401: 'Unauthorized',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Answers a refused upgrade with a plain HTTP response carrying the documented error body. */
function rejectUpgrade(socket: Duplex, e: GatewayError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({
    error: {
      code: e.code,
      message: e.message,
      ...(e.retryAfterMs !== undefined ? { retry_after_ms: e.retryAfterMs } : {}),
    },
  });
  const headers = [
    `HTTP/1.1 ${e.status} ${REASONS[e.status] ?? 'Error'}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...(e.retryAfterMs !== undefined
      ? [`Retry-After: ${Math.max(1, Math.ceil(e.retryAfterMs / 1000))}`]
      : []),
    ...(e.status === 401 ? ['WWW-Authenticate: Basic realm="relay"'] : []),
  ];
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
}
