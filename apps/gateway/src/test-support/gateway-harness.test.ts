/**
 * Shared set-up for the gateway's integration tests (not a test itself). Everything is real: Postgres,
 * NATS/JetStream, HTTP, WebSocket and libsignal. Two services the gateway talks to are replaced by
 * small stand-ins on real NATS, because they are built separately: storage (an in-memory queue
 * answering storage.pending / storage.ack) and crypto (a real libsignal business identity answering
 * crypto.business_bundle and decrypting envelopes from JetStream).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { connect, type NatsConnection } from 'nats';
import pino from 'pino';
import { Registry } from 'prom-client';
import { NatsBus, ensureStreams, migrate, startService } from '@relay/platform';
import { MemoryStateStore, DeviceClient, type DeviceClientOptions } from '@relay/device-sdk';
import {
  TEST_NATS_URL,
  createTestDatabase,
  deleteStreams,
  freePort,
  serviceEnv,
  testSubjectRoot,
  waitFor,
  type TestDatabase,
} from '@relay/testing';
import { gatewayDataSource } from '../data-source';
import { gatewayService } from '../service';
import { RateLimiter } from '../ratelimit/rate-limiter';

export const silentLog = pino({ level: 'silent' });

/** A local HTTP server standing in for an SMS provider: records each verification hook call. */
export class CodeReceiver {
  readonly calls: { body: Record<string, string>; authorization?: string }[] = [];
  status = 200;
  private server?: Server;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        this.calls.push({
          body: JSON.parse(body) as Record<string, string>,
          authorization: req.headers.authorization,
        });
        res.statusCode = this.status;
        res.end();
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(this.server?.address() as AddressInfo).port}/sms`;
  }

  async codeFor(sessionId: string): Promise<string> {
    const call = await waitFor(() => this.calls.find((c) => c.body.session_id === sessionId));
    return call?.body.code ?? '';
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

export const HOOK_TOKEN = 'test-hook-token-0123456789';

/** One test file's world: its own database, subject root, NATS connection and code receiver. */
export class TestWorld {
  db!: TestDatabase;
  readonly root: string;
  nc!: NatsConnection;
  readonly codes = new CodeReceiver();
  hookUrl = '';
  private readonly apps: INestApplication[] = [];
  private readonly buses: NatsBus[] = [];
  private readonly clients: DeviceClient[] = [];
  private readonly processes: ChildProcess[] = [];

  constructor(label: string) {
    this.root = testSubjectRoot(label);
  }

  async init(): Promise<void> {
    this.db = await createTestDatabase(`gw${this.root}`);
    const ds = gatewayDataSource(this.db.url, 2);
    await migrate(ds);
    await ds.destroy();
    this.nc = await connect({ servers: TEST_NATS_URL });
    await ensureStreams(await this.nc.jetstreamManager(), { root: this.root, retentionDays: 1 });
    this.hookUrl = await this.codes.start();
  }

  /** Starts a gateway (in-process Nest app) on this world's database and NATS root. */
  async gateway(extra: Record<string, string> = {}): Promise<{ app: INestApplication; url: string }> {
    const app = await startService(
      gatewayService,
      serviceEnv(this.db, this.root, {
        VERIFICATION_SENDER: 'http',
        VERIFICATION_HOOK_URL: this.hookUrl,
        VERIFICATION_HOOK_TOKEN: HOOK_TOKEN,
        LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
        // Many test files run at once against one Postgres: keep each gateway's pool small.
        DATABASE_POOL_SIZE: '3',
        ...extra,
      }),
    );
    this.apps.push(app);
    return { app, url: (await app.getUrl()).replace('[::1]', '127.0.0.1') };
  }

  /**
   * Starts a gateway as its own OS process (the built dist/ entry point, as `npm start` runs it) on
   * this world's database and NATS root; stopped by close().
   */
  async gatewayProcess(extra: Record<string, string> = {}): Promise<{ url: string }> {
    const port = await freePort();
    const env = serviceEnv(this.db, this.root, {
      VERIFICATION_SENDER: 'http',
      VERIFICATION_HOOK_URL: this.hookUrl,
      VERIFICATION_HOOK_TOKEN: HOOK_TOKEN,
      LOG_LEVEL: 'warn',
      DATABASE_POOL_SIZE: '3',
      HTTP_PORT: String(port),
      ...extra,
    });
    const { NODE_OPTIONS: _jestFlags, ...parentEnv } = process.env;
    const child = spawn(process.execPath, [join(__dirname, '../../../../dist/apps/gateway/src/main.js')], {
      env: { ...parentEnv, ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    this.processes.push(child);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/ready`).catch(() => undefined))?.ok, 30_000, 100);
    return { url };
  }

  /** A bus as another service would have it (for stand-ins and for observing events). */
  async bus(service: 'storage' | 'crypto' | 'business-forwarding'): Promise<NatsBus> {
    const jsm = await this.nc.jetstreamManager();
    const bus = new NatsBus(this.nc, this.nc.jetstream(), jsm, this.root, service, silentLog, new Registry());
    this.buses.push(bus);
    return bus;
  }

  /** A registered device (SDK), verified through the HTTP hook. */
  async device(url: string, waId: string, opts: Partial<DeviceClientOptions> = {}): Promise<DeviceClient> {
    const client = await DeviceClient.open({
      store: new MemoryStateStore(),
      server: url,
      prekeyBatch: 5,
      ...opts,
    });
    const session = await client.startVerification(waId);
    await client.register(session.session_id, await this.codes.codeFor(session.session_id));
    this.clients.push(client);
    return client;
  }

  /** Opens a device client on an existing store (e.g. the same device reconnecting). */
  async reopen(store: MemoryStateStore, opts: Partial<DeviceClientOptions> = {}): Promise<DeviceClient> {
    const client = await DeviceClient.open({ store, ...opts });
    this.clients.push(client);
    return client;
  }

  async close(): Promise<void> {
    for (const c of this.clients) await c.close().catch(() => undefined);
    for (const a of this.apps) await a.close().catch(() => undefined);
    await Promise.all(
      this.processes.map(
        (p) =>
          new Promise<void>((res) => {
            if (p.exitCode !== null || p.signalCode !== null) return res();
            p.once('exit', () => res());
            p.kill('SIGTERM');
          }),
      ),
    );
    await this.codes.stop();
    if (this.nc) {
      const jsm = await this.nc.jetstreamManager();
      await jsm.streams.delete(`KV_${RateLimiter.bucketName(this.root)}`).catch(() => undefined);
      await this.nc.drain().catch(() => undefined);
    }
    await deleteStreams(this.root);
    await this.db?.drop();
  }
}
