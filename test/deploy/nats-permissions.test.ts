// NATS least privilege, on a real nats-server running the shipped configuration (store encryption on):
// each service, logged in as its own user, can do exactly what its role in the subject map needs
// (provision the streams, publish what it produces, consume what it consumes through the platform's
// NatsBus, call and answer its RPCs, send and hear its wake-ups, keep its KV bucket) and is refused
// everything else. The apps' sources are scanned so a new NATS use without a grant fails here.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { NatsConnection } from 'nats';
import pino from 'pino';
import { Registry } from 'prom-client';
import {
  EVENTS,
  NOTIFICATIONS,
  RPCS,
  STREAMS,
  eventSubject,
  notifySubject,
  rpcSubject,
  streamName,
} from '@relay/protocol';
import { NatsBus, ensureStreams } from '@relay/platform';
import {
  USERS,
  callers,
  canPublish,
  canSubscribe,
  checkConfig,
  renderedNatsConfig,
  secretEnv,
  startNats,
  type RunningNats,
} from './support/nats-harness';
import { ROOT } from './support/render';
import { SERVICE_NAMES, type ServiceName } from './support/services';

const ROOT_TOKEN = 'relay';
const DENIED = { code: 'PERMISSIONS_VIOLATION' };
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const tokensOf = (names: readonly string[]) => Object.fromEntries(names.map((t) => [t, 'probe1']));
type EventName = keyof typeof EVENTS;
type RpcName = keyof typeof RPCS;
type NotifyName = keyof typeof NOTIFICATIONS;

let nats: RunningNats;
const conns = new Map<string, NatsConnection>();
const bus = (svc: ServiceName, nc: NatsConnection) =>
  nc
    .jetstreamManager()
    .then(
      (jsm) =>
        new NatsBus(nc, nc.jetstream(), jsm, ROOT_TOKEN, svc, pino({ level: 'silent' }), new Registry()),
    );

beforeAll(async () => {
  nats = await startNats();
  for (const u of USERS) conns.set(u, await nats.connectAs(u));
});
afterAll(async () => {
  for (const nc of conns.values()) await nc.close().catch(() => undefined);
  await nats?.stop();
});
const as = (u: string) => conns.get(u) as NatsConnection;

describe('the shipped NATS configuration', () => {
  it('is valid for nats-server as a whole (cluster routes, JetStream encryption, users)', () => {
    const { natsConf, authConf } = renderedNatsConfig();
    writeFileSync(join(nats.dir, 'full.conf'), natsConf);
    writeFileSync(join(nats.dir, 'auth.conf'), authConf);
    expect(checkConfig(nats.dir, 'full.conf', secretEnv())).toEqual({ ok: true, out: expect.any(String) });
  });

  it('is what deploy/scripts/gen-nats-auth.mjs generates from the current subject map', () => {
    // npm test builds dist/ first, which the generator reads.
    const generated = execFileSync(process.execPath, [join(ROOT, 'deploy/scripts/gen-nats-auth.mjs')], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    expect(readFileSync(join(ROOT, 'deploy/base/nats/auth.conf'), 'utf8')).toBe(generated);
  });

  it('refuses a wrong password and a missing one', async () => {
    const { connect } = await import('nats');
    const server = `nats://127.0.0.1:${nats.port}`;
    await expect(
      connect({ servers: server, user: 'crypto', pass: 'wrong', maxReconnectAttempts: 0 }),
    ).rejects.toThrow();
    await expect(connect({ servers: server, maxReconnectAttempts: 0 })).rejects.toThrow();
  });
});

describe.each(SERVICE_NAMES)('NATS user %s', (svc) => {
  it('provisions the relay streams as every service does at start', async () => {
    const jsm = await as(svc).jetstreamManager();
    await expect(ensureStreams(jsm, { root: ROOT_TOKEN, retentionDays: 30 })).resolves.toBeUndefined();
  });

  it.each(Object.keys(EVENTS) as EventName[])('publishes %s only if it produces it', async (name) => {
    const subject = eventSubject(ROOT_TOKEN, name, tokensOf(EVENTS[name].tokens) as never);
    const producer = (EVENTS[name].producers as readonly string[]).includes(svc);
    expect(await canPublish(as(svc), subject)).toBe(producer);
  });

  it.each(Object.keys(EVENTS) as EventName[])(
    'consumes %s through NatsBus only if it consumes it',
    async (name) => {
      const b = await bus(svc, as(svc));
      const durable = `probe-${svc}-${name.replace(/\./g, '_')}`;
      const consumes = (EVENTS[name].consumers as readonly string[]).includes(svc);
      if (!consumes) {
        // Stop a consumer that was (wrongly) allowed, so a failing run does not leave it pulling.
        const outcome = await b
          .consume(name, { durable }, async () => undefined)
          .then(
            (h) => h.stop().then(() => 'allowed'),
            (err: { code?: string }) => err.code,
          );
        expect(outcome).toBe(DENIED.code);
        return;
      }
      const handle = await b.consume(name, { durable, deliverPolicy: 'new' }, async () => undefined);
      // An invalid payload is fetched and terminated: fetch (MSG.NEXT) and ack ($JS.ACK) both allowed.
      const ack = await as('admin')
        .jetstream()
        .publish(eventSubject(ROOT_TOKEN, name, tokensOf(EVENTS[name].tokens) as never), enc({ bad: 1 }));
      const jsm = await as('admin').jetstreamManager();
      const stream = streamName(ROOT_TOKEN, EVENTS[name].stream);
      for (let i = 0; (await jsm.consumers.info(stream, durable)).ack_floor.stream_seq < ack.seq; i++) {
        if (i > 100) throw new Error(`${svc} never acknowledged ${name}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await handle.stop();
    },
  );

  it.each(Object.keys(EVENTS) as EventName[])(
    'reads %s back by direct get only if it consumes it from a stream that allows that',
    async (name) => {
      const b = await bus(svc, as(svc));
      const granted =
        (EVENTS[name].consumers as readonly string[]).includes(svc) &&
        STREAMS[EVENTS[name].stream].directGet === true;
      const outcome = await b.readSubject(name, tokensOf(EVENTS[name].tokens) as never, 1, 1000).then(
        () => 'allowed',
        (err: { code?: string }) => err.code,
      );
      expect(outcome).toBe(granted ? 'allowed' : DENIED.code);
    },
  );

  it.each(Object.keys(RPCS) as RpcName[])('calls and answers RPC %s only as granted', async (name) => {
    const subject = rpcSubject(ROOT_TOKEN, name);
    const requester = (callers.rpcRequesters[name] ?? []).includes(svc);
    const responder = RPCS[name].responder === svc;
    expect(await canPublish(as(svc), subject)).toBe(requester);
    expect(await canSubscribe(as(svc), subject, svc)).toBe(responder);
    if (responder) {
      // A real round trip: the responder's reply (allow_responses) reaches a granted requester.
      (await bus(svc, as(svc))).respond(name, async () => {
        throw new Error('never called: the probe payload is invalid');
      });
      await as(svc).flush();
      const caller = callers.rpcRequesters[name]?.[0] ?? 'admin';
      const reply = await as(caller).request(subject, enc({ probe: true }), { timeout: 2000 });
      expect(JSON.parse(new TextDecoder().decode(reply.data))).toMatchObject({
        ok: false,
        error: { code: 'invalid_payload' },
      });
    }
  });

  it.each(Object.keys(NOTIFICATIONS) as NotifyName[])(
    'sends and hears wake-up %s only as granted',
    async (name) => {
      const grant = callers.notify[name] ?? { publishers: [], subscribers: [] };
      const subject = notifySubject(ROOT_TOKEN, name, tokensOf(NOTIFICATIONS[name].tokens) as never);
      expect(await canPublish(as(svc), subject)).toBe(grant.publishers.includes(svc));
      expect(await canSubscribe(as(svc), subject)).toBe(grant.subscribers.includes(svc));
    },
  );

  it("keeps its KV buckets and cannot open anyone else's", async () => {
    for (const [owner, suffixes] of Object.entries(callers.kvBuckets)) {
      for (const suffix of suffixes) {
        const open = as(svc)
          .jetstream()
          .views.kv(`${ROOT_TOKEN}_${suffix}`, { history: 1, storage: 'memory' as never, ttl: 60_000 });
        if (owner !== svc) {
          await expect(open).rejects.toMatchObject(DENIED);
          continue;
        }
        const kv = await open;
        const rev = await kv.create('probe.k', enc(1));
        await kv.update('probe.k', enc(2), rev);
        expect(JSON.parse(new TextDecoder().decode((await kv.get('probe.k'))?.value))).toBe(2);
        await kv.purge('probe.k');
      }
    }
  });

  it('cannot delete or purge streams, create others, or listen to the whole relay', async () => {
    const nc = as(svc);
    for (const api of ['STREAM.DELETE', 'STREAM.PURGE']) {
      expect(await canPublish(nc, `$JS.API.${api}.${streamName(ROOT_TOKEN, 'INBOUND')}`)).toBe(false);
    }
    expect(await canPublish(nc, '$JS.API.STREAM.CREATE.SOMETHING_ELSE')).toBe(false);
    expect(await canPublish(nc, `${ROOT_TOKEN}.v2.anything`)).toBe(false);
    expect(await canSubscribe(nc, `${ROOT_TOKEN}.>`)).toBe(false);
  });
});

describe('the apps use NATS only as granted', () => {
  const sources = (dir: string): string[] =>
    readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) return /^(__fixtures__|test-support|testing)$/.test(f) ? [] : sources(p);
      return /\.ts$/.test(f) && !/\.(spec|test)\.ts$/.test(f) ? [p] : [];
    });

  it.each(SERVICE_NAMES)('%s: every typed bus call in its source is allowed to its user', (svc) => {
    const missing: string[] = [];
    for (const file of sources(join(ROOT, 'apps', svc, 'src'))) {
      const text = readFileSync(file, 'utf8');
      for (const [, method, name] of text.matchAll(
        /\.(publish|consume|request|respond|notify|onNotify)\(\s*'([a-z_.]+)'/g,
      )) {
        const ev = EVENTS[name as EventName] as
          { producers: readonly string[]; consumers: readonly string[] } | undefined;
        const rpc = RPCS[name as RpcName] as { responder: string } | undefined;
        const ntf =
          name in NOTIFICATIONS ? (callers.notify[name] ?? { publishers: [], subscribers: [] }) : undefined;
        const ok: Record<string, boolean | undefined> = {
          publish: ev && ev.producers.includes(svc),
          consume: ev && ev.consumers.includes(svc),
          request: rpc && (callers.rpcRequesters[name] ?? []).includes(svc),
          respond: rpc && rpc.responder === svc,
          notify: ntf && ntf.publishers.includes(svc),
          onNotify: ntf && ntf.subscribers.includes(svc),
        };
        const known = ev || rpc || ntf;
        if (known && !ok[method]) missing.push(`${relative(ROOT, file)}: ${method}('${name}')`);
      }
      const direct = /\.(views\.kv|jetstreamManager|jetstream)\(|\bjsm\.|\.nc\./.test(text);
      if (direct && !(relative(ROOT, file) in callers.directNatsUse))
        missing.push(`${relative(ROOT, file)}: direct NATS use`);
    }
    expect(missing).toEqual([]);
  });
});
