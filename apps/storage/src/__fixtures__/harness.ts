import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Pool } from 'pg';
import { Registry } from 'prom-client';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AckPolicy, connect, type NatsConnection } from 'nats';
import {
  FakeClock,
  NatsBus,
  createLogger,
  decodeJson,
  migrate,
  startService,
  type Clock,
} from '@relay/platform';
import { EVENTS, notifyFilter, streamName, type EventName, type NotifyName } from '@relay/protocol';
import {
  TEST_NATS_URL,
  createTestDatabase,
  deleteStreams,
  serviceEnv,
  testSubjectRoot,
  type TestDatabase,
  waitFor,
} from '@relay/testing';
import { AppModule } from '../app.module';
import { StorageConfigSchema } from '../config';
import { migrateExtra, storageDataSource } from '../data-source';
import { registered } from './events';

export const masterKeySpec = () => `m1:${randomBytes(32).toString('base64')}`;

/** A storage service under test: its databases (default + regions), its subject root, a producer bus. */
export class StorageHarness {
  app: NestExpressApplication | undefined;
  readonly pools = new Map<string, Pool>();
  private stoppers: (() => void)[] = [];

  private constructor(
    readonly root: string,
    readonly db: TestDatabase,
    readonly regions: Map<string, TestDatabase>,
    readonly env: NodeJS.ProcessEnv,
    readonly producer: NatsBus,
    readonly nc: NatsConnection,
  ) {
    this.pools.set('default', new Pool({ connectionString: db.url, max: 1 }));
    for (const [r, d] of regions) this.pools.set(r, new Pool({ connectionString: d.url, max: 1 }));
  }

  static async create(
    label: string,
    opts: { regions?: string[]; env?: Record<string, string> } = {},
  ): Promise<StorageHarness> {
    const root = testSubjectRoot(label);
    const db = await createTestDatabase(label);
    const regions = new Map<string, TestDatabase>();
    for (const r of opts.regions ?? []) regions.set(r, await createTestDatabase(`${label}${r}`));
    const env = serviceEnv(db, root, {
      MASTER_KEY: masterKeySpec(),
      STORAGE_REGION_DATABASE_URLS: [...regions].map(([r, d]) => `${r}=${d.url}`).join(','),
      PURGE_INTERVAL_MS: '3600000',
      // The test Postgres is shared by every test file running at once: small pools.
      DATABASE_POOL_SIZE: '3',
      ...opts.env,
    });
    const ds = storageDataSource(db.url, 2);
    await migrate(ds);
    await ds.destroy();
    await migrateExtra(env);
    const nc = await connect({ servers: TEST_NATS_URL, name: `storage-test-${label}` });
    const producer = new NatsBus(
      nc,
      nc.jetstream(),
      await nc.jetstreamManager(),
      root,
      'business-forwarding',
      createLogger('test-producer', 'silent'),
      new Registry(),
    );
    return new StorageHarness(root, db, regions, env, producer, nc);
  }

  /** A started service (on `clock`) with one registered number: the retransmission tests' world. */
  static async withNumber(label: string, clock: Clock, pn: string): Promise<StorageHarness> {
    const h = await StorageHarness.create(label);
    await h.start(clock);
    await h.producer.publish(
      'business.number_registered',
      { phone_number_id: pn },
      registered(pn, clock.now()),
    );
    await waitFor(() => h.count('default', 'numbers'));
    return h;
  }

  /** Starts the service in-process (its streams are provisioned on start). */
  async start(clock?: Clock): Promise<NestExpressApplication> {
    this.app = await startService(
      {
        service: 'storage',
        configSchema: StorageConfigSchema,
        module: (c) => AppModule.register(c, { clock }),
      },
      this.env,
    );
    return this.app;
  }

  async stop(): Promise<void> {
    await this.app?.close();
    this.app = undefined;
  }

  pool(name = 'default'): Pool {
    const p = this.pools.get(name);
    if (!p) throw new Error(`no database ${name}`);
    return p;
  }

  async count(name: string, table: string, where = 'true', params: unknown[] = []): Promise<number> {
    const r = await this.pool(name).query(
      `SELECT count(*)::int AS n FROM storage.${table} WHERE ${where}`,
      params,
    );
    return (r.rows[0] as { n: number }).n;
  }

  /** Plain-SQL text of one database as pg_dump writes it (data included). */
  async dump(name = 'default'): Promise<string> {
    const db = name === 'default' ? this.db : this.regions.get(name);
    if (!db) throw new Error(`no database ${name}`);
    const { stdout } = await promisify(execFile)('pg_dump', ['--no-owner', db.url], {
      maxBuffer: 512 * 1024 * 1024,
    });
    return stdout;
  }

  /** Every event the stream stored on a subject (what consumers see, JetStream dedupe applied), live. */
  async events(name: EventName): Promise<unknown[]> {
    const out: unknown[] = [];
    const stream = streamName(this.root, EVENTS[name].stream);
    const jsm = await this.nc.jetstreamManager();
    const info = await jsm.consumers.add(stream, {
      name: `test${randomBytes(6).toString('hex')}`,
      ack_policy: AckPolicy.None,
      filter_subject: `${this.root}.v1.${name}.>`,
      inactive_threshold: 60_000 * 1e6,
    });
    const consumer = await this.nc.jetstream().consumers.get(stream, info.name);
    const messages = await consumer.consume();
    this.stoppers.push(() => messages.stop());
    void (async () => {
      for await (const m of messages) {
        const d = decodeJson(m.data);
        if (d.ok) out.push(d.value);
      }
    })();
    return out;
  }

  /** Every core notification from now on. */
  async notifications(name: NotifyName): Promise<unknown[]> {
    const out: unknown[] = [];
    const sub = this.nc.subscribe(notifyFilter(this.root, name));
    this.stoppers.push(() => sub.unsubscribe());
    void (async () => {
      for await (const m of sub) {
        const d = decodeJson(m.data);
        if (d.ok) out.push(d.value);
      }
    })();
    await this.nc.flush();
    return out;
  }

  async close(): Promise<void> {
    await this.stop();
    for (const stop of this.stoppers) stop();
    await this.nc.close();
    for (const p of this.pools.values()) await p.end();
    await deleteStreams(this.root);
    await this.db.drop();
    for (const d of this.regions.values()) await d.drop();
  }
}

export { FakeClock };
