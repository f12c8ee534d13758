// Test helpers for the crypto service's integration tests (not a test file itself: Jest only runs
// *.int.test.ts here). Everything is real: Postgres, NATS/JetStream, libsignal on both sides.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import pino from 'pino';
import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import type { INestApplication } from '@nestjs/common';
import { NatsBus, SubjectSequencer, ensureStreams, migrate, startService } from '@relay/platform';
import {
  RpcError,
  streamName,
  type DeviceEnvelope,
  type EventName,
  type EventPayload,
  type PreKeyBundle,
} from '@relay/protocol';
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
import { AppModule } from '../app.module';
import { CryptoConfigSchema } from '../config';
import { cryptoDataSource } from '../data-source';
import { CryptoServices } from '../services';
import { DeviceClient } from './device-client';

export const REPO_ROOT = join(__dirname, '../../../..');
export const NODE_BIN = process.execPath;

export interface Collected<N extends EventName> {
  payload: EventPayload<N>;
  msgId?: string;
}

/** One test file's world: its own database, subject root, master key and a test-side NATS bus. */
export class CryptoTestEnv {
  db!: TestDatabase;
  root!: string;
  nc!: NatsConnection;
  bus!: NatsBus;
  private envelopes?: SubjectSequencer<'device.envelope'>;
  ds!: DataSource;
  readonly masterKey = `mk1:${randomBytes(32).toString('base64')}`;
  readonly inbound: Collected<'inbound.message'>[] = [];
  readonly failures: Collected<'inbound.failure'>[] = [];
  readonly deliveries: Collected<'delivery.ciphertext'>[] = [];
  readonly outboundFailures: Collected<'outbound.failure'>[] = [];
  readonly erasures: Collected<'business.erase_completed'>[] = [];
  /** The gateway stand-in's device directory: wa_id -> devices (real libsignal device stores). */
  readonly directory = new Map<string, DeviceClient[]>();
  private readonly apps: INestApplication[] = [];
  private readonly children = new Set<ChildProcess>();
  private readonly ports = new Map<ChildProcess, number>();

  async setup(label: string): Promise<void> {
    this.db = await createTestDatabase(label);
    this.root = testSubjectRoot(label);
    this.ds = cryptoDataSource(this.db.url, 2);
    await migrate(this.ds);
    this.nc = await connect({ servers: TEST_NATS_URL, name: `test-${label}` });
    const jsm = await this.nc.jetstreamManager();
    await ensureStreams(jsm, { root: this.root, retentionDays: 1 });
    // The test plays gateway (bundles, envelopes) and business-forwarding (requests, events).
    this.bus = new NatsBus(
      this.nc,
      this.nc.jetstream(),
      jsm,
      this.root,
      'gateway',
      pino({ level: 'silent' }),
      new Registry(),
    );
    // Stand-in for gateway's device_bundles RPC (gateway is built separately): real device-side stores,
    // answered as gateway answers (apps/gateway/src/keys/bundles.service.ts).
    this.bus.respond('gateway.device_bundles', async (req) => {
      const devices = this.directory.get(req.wa_id) ?? [];
      if (devices.length === 0) throw new RpcError('not_found', 'no such user or devices');
      const known = new Set(req.known_device_ids ?? []);
      const bundles = devices.filter((d) => !known.has(d.deviceId)).map((d) => d.bundle());
      if (!req.known_device_ids) return { wa_id: req.wa_id, devices: bundles };
      return { wa_id: req.wa_id, devices: bundles, device_ids: devices.map((d) => d.deviceId) };
    });
    const collect = <N extends EventName>(name: N, into: Collected<N>[]) =>
      this.bus.consume(
        name,
        { durable: `test-${name.replace('.', '-')}`, concurrency: 64 },
        async (payload, meta) => {
          into.push({ payload, msgId: meta.msgId });
        },
      );
    await collect('inbound.message', this.inbound);
    await collect('inbound.failure', this.failures);
    await collect('delivery.ciphertext', this.deliveries);
    await collect('outbound.failure', this.outboundFailures);
    await collect('business.erase_completed', this.erasures);
  }

  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return serviceEnv(this.db, this.root, {
      MASTER_KEY: this.masterKey,
      CRYPTO_WORKERS: '2',
      KEY_MAINTENANCE_INTERVAL_MS: '3600000',
      // Small pools: the whole suite shares one Postgres (max_connections 100).
      DATABASE_POOL_SIZE: '5',
      CRYPTO_BATCHES_IN_FLIGHT: '2',
      ...extra,
    });
  }

  /** Runs the crypto service in this process (Nest app, real worker threads). */
  async startInProcess(extra: Record<string, string> = {}): Promise<CryptoServices> {
    const app = await startService(
      { service: 'crypto', configSchema: CryptoConfigSchema, module: (c) => AppModule.register(c) },
      this.env(extra),
    );
    this.apps.push(app);
    return app.get(CryptoServices);
  }

  /** Runs the crypto service as a separate OS process from the built dist/ (as in production). */
  async spawnProcess(extra: Record<string, string> = {}): Promise<ChildProcess> {
    const port = await freePort();
    const child = spawn(NODE_BIN, [join(REPO_ROOT, 'dist/apps/crypto/src/main.js')], {
      env: { PATH: process.env.PATH, ...this.env({ HTTP_PORT: String(port), ...extra }) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (d: Buffer) => process.stderr.write(`[crypto ${child.pid}] ${d.toString()}`));
    this.children.add(child);
    this.ports.set(child, port);
    child.on('exit', () => this.children.delete(child));
    // /ready answers once Nest has bootstrapped, i.e. after the consumers are bound.
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`crypto exited with ${child.exitCode}`);
      const res = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null);
      return res?.status === 200;
    }, 30_000);
    return child;
  }

  /** Envelopes a spawned process acknowledged (from its Prometheus metrics). */
  async ackedEnvelopes(child: ChildProcess): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.ports.get(child)}/metrics`)).text();
    const line = text
      .split('\n')
      .find(
        (l) =>
          l.startsWith('relay_nats_messages_total') &&
          l.includes('name="device.envelope"') &&
          l.includes('outcome="ack"'),
      );
    return line ? Number(line.split(' ').pop()) : 0;
  }

  async provision(pn: string): Promise<void> {
    await this.bus.publish(
      'business.number_registered',
      { phone_number_id: pn },
      {
        phone_number_id: pn,
        waba_id: '900',
        display_phone_number: `+${pn}`,
        retention_days: 30,
        at: new Date().toISOString(),
      },
    );
    await waitFor(
      async () =>
        (await this.ds.query(`SELECT 1 FROM crypto.identities WHERE phone_number_id = $1`, [pn])).length > 0,
      20_000,
    );
  }

  /** As a device that asks for the business's bundle does, it is registered (a reinstall replaces it). */
  bundle(pn: string, device: DeviceClient): Promise<PreKeyBundle> {
    this.register(device);
    return this.bus.request('crypto.business_bundle', {
      phone_number_id: pn,
      requester: { wa_id: device.waId, device_id: device.deviceId },
    });
  }

  /** As business-forwarding does: a text from the business to a user; returns its wamid. */
  async businessSends(pn: string, to: string, body: string, wamid = `wamid.${randomId()}`): Promise<string> {
    await this.bus.publish(
      'outbound.request',
      { phone_number_id: pn },
      {
        wamid,
        phone_number_id: pn,
        to,
        content: { type: 'text', text: { body } },
        accepted_at: new Date().toISOString(),
      },
    );
    return wamid;
  }

  /** Adds the device to the gateway stand-in's directory, replacing one with the same device id. */
  register(device: DeviceClient): void {
    const others = (this.directory.get(device.waId) ?? []).filter((d) => d.deviceId !== device.deviceId);
    this.directory.set(
      device.waId,
      [...others, device].sort((a, b) => a.deviceId - b.deviceId),
    );
  }

  /** Encrypts a DevicePlaintext text message on the device; returns the envelope (not yet sent). */
  async envelope(
    pn: string,
    device: DeviceClient,
    body: string,
    envelopeId = randomId(),
  ): Promise<DeviceEnvelope> {
    const plaintext = JSON.stringify({
      v: 1,
      sent_at: Date.now(),
      content: { type: 'text', text: { body } },
    });
    const ct = await device.encrypt(pn, plaintext);
    return {
      envelope_id: envelopeId,
      phone_number_id: pn,
      from: { wa_id: device.waId, device_id: device.deviceId },
      type: ct.type,
      ciphertext: ct.ciphertext,
      received_at: new Date().toISOString(),
    };
  }

  /** As the gateway publishes: each session's envelopes in turn, stamped with their predecessor. */
  send(env: DeviceEnvelope, msgId: string | undefined = env.envelope_id) {
    this.envelopes ??= new SubjectSequencer(this.bus, 'device.envelope');
    return this.envelopes.publish(sessionTokens(env), env, { msgId });
  }

  messageFor(envelopeId: string) {
    return this.inbound.filter((m) => m.payload.envelope_id === envelopeId);
  }
  failureFor(envelopeId: string) {
    return this.failures.filter((m) => m.payload.envelope_id === envelopeId);
  }

  /** Every message on a stream subject, with its msgId (what the stream holds, not what consumers saw). */
  async streamMessages(name: EventName): Promise<{ data: unknown; msgId?: string }[]> {
    const jsm = await this.nc.jetstreamManager();
    const key = name.startsWith('inbound')
      ? 'INBOUND'
      : name.startsWith('delivery')
        ? 'DELIVERY'
        : 'OUTBOUND';
    const stream = streamName(this.root, key);
    const info = await jsm.streams.info(stream);
    const out: { data: unknown; msgId?: string }[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
      if (!m || !m.subject.startsWith(`${this.root}.v1.${name}.`)) continue;
      out.push({
        data: JSON.parse(Buffer.from(m.data).toString('utf8')),
        msgId: m.header?.get('Nats-Msg-Id') || undefined,
      });
    }
    return out;
  }

  async teardown(): Promise<void> {
    for (const c of this.children) c.kill('SIGKILL');
    for (const app of this.apps) await app.close().catch(() => undefined);
    await this.bus?.close(1000).catch(() => undefined);
    await this.ds?.destroy().catch(() => undefined);
    await deleteStreams(this.root).catch(() => undefined);
    await this.db?.drop();
  }
}

/** The subject tokens of an envelope's session. */
export const sessionTokens = (env: DeviceEnvelope) => ({
  phone_number_id: env.phone_number_id,
  wa_id: env.from.wa_id,
  device_id: env.from.device_id,
});

export const randomId = () => randomBytes(12).toString('base64url');

export async function until<T>(fn: () => T | Promise<T>, timeoutMs = 15_000): Promise<NonNullable<T>> {
  return (await waitFor(fn, timeoutMs, 25)) as NonNullable<T>;
}
