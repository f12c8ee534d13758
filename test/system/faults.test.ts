/**
 * Faults under load: with texts streaming both ways, every service process is killed with SIGKILL in
 * turn (gateway, both crypto processes, business-forwarding, storage) and restarted by the run
 * command's supervisor, and the test's own NATS and Postgres servers are restarted. Afterwards every
 * accepted message has arrived once (one id per message, each id once on the devices), and every
 * Signal session still carries new messages both ways.
 *
 * Two users stream to the business and the business streams to the other two. (A session that
 * ping-pongs many messages a second both ways ratchets past libsignal's five kept receiver chains
 * while a message of a killed crypto process waits for redelivery, and that message then cannot be
 * decrypted: a protocol limit, reported with the issue, not something this test hides.)
 */
import { deleteStreams, testSubjectRoot, waitFor } from '@relay/testing';
import { WebhookBusiness } from './support/business';
import { OwnNats, OwnPostgres } from './support/own-servers';
import { Relay, until } from './support/relay';
import { CodeHook, HOOK_TOKEN, Phone } from './support/users';

jest.setTimeout(300_000);

const SERVICES = ['gateway', 'crypto', 'crypto#2', 'business-forwarding', 'storage'];
const nats = new OwnNats();
const pg = new OwnPostgres();
const hook = new CodeHook();
const shop = new WebhookBusiness();
const phones = [1, 2, 3, 4].map((i) => new Phone(`491530000000${i}`, `User ${i}`));
const root = testSubjectRoot('faults');
let relay: Relay;

/** What the users and the business had accepted (the relay answered "stored"). */
const acceptedIn = new Set<string>();
/** Which fault was last injected when each user message was sent (to name a loss). */
const phaseOf = new Map<string, string>();
let phase = 'start';
const acceptedOut = new Map<string, { wamid: string; phone: Phone }>();
let streaming = true;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, sleep(ms).then(() => undefined)]) as Promise<T | undefined>;

/** A single send that must go through: transient refusals right after a restart are retried. */
async function surely<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 30) throw err;
      await sleep(500);
    }
  }
}

async function userStream(phone: Phone): Promise<void> {
  for (let n = 0; streaming; n++) {
    const body = `in:${phone.waId}:${n}`;
    phaseOf.set(body, phase);
    // A send that gets no answer (a service is down) may still be accepted later: it counts once it is.
    const sent = phone.sendText(shop.pnid, body).then(
      () => acceptedIn.add(body),
      () => undefined,
    );
    await within(sent, 10_000);
    await sleep(120);
  }
}

async function businessStream(phone: Phone): Promise<void> {
  for (let n = 0; streaming; n++) {
    const body = `out:${phone.waId}:${n}`;
    const wamid = await shop.sendText(relay, phone.waId, body).catch(() => undefined);
    if (wamid) acceptedOut.set(body, { wamid, phone });
    await sleep(wamid ? 120 : 500);
  }
}

beforeAll(async () => {
  await Promise.all([nats.start(), pg.start()]);
  await pg.createDatabase();
  relay = new Relay({
    natsUrl: nats.url,
    databaseUrl: pg.url,
    subjectRoot: root,
    env: { VERIFICATION_HOOK_URL: await hook.start(), VERIFICATION_HOOK_TOKEN: HOOK_TOKEN },
  });
  await relay.start();
  await shop.setUp(relay);
  for (const p of phones) await p.register(relay.url('gateway'), hook);
  await Promise.all(phones.map((p) => p.connect()));
}, 240_000);

afterAll(async () => {
  streaming = false;
  await Promise.all(phones.map((p) => p.client?.close()));
  if (process.env.SYSTEM_RELAY_LOG)
    require('node:fs').writeFileSync(process.env.SYSTEM_RELAY_LOG, relay.output);
  await relay?.stop();
  await Promise.all([shop.close(), hook.stop()]);
  await deleteStreams(root).catch(() => undefined);
  await Promise.all([nats.remove(), pg.remove()]);
});

it('loses and duplicates nothing while each service, NATS and Postgres are restarted', async () => {
  const [writers, readers] = [phones.slice(0, 2), phones.slice(2)];
  // Every user writes first: the business may answer within the 24-hour window.
  for (const p of readers) await surely(() => p.sendText(shop.pnid, `hello:${p.waId}`));
  const streams = writers.map((p) => userStream(p));
  await waitFor(() => phones.every((p) => shop.messages.some((m) => m.from === p.waId)), 30_000);
  streams.push(...readers.map((p) => businessStream(p)));
  await sleep(3000);

  const faults: [string, () => Promise<void>][] = [
    ...SERVICES.map((s): [string, () => Promise<void>] => [`kill -9 ${s}`, () => relay.kill9(s)]),
    ['restart NATS', () => nats.restart()],
    ['restart Postgres', () => pg.restart()],
  ];
  for (const [name, fault] of process.env.SYSTEM_NO_FAULTS
    ? [['none', () => sleep(30_000)] as const]
    : faults) {
    const before = acceptedIn.size + acceptedOut.size;
    phase = name;
    await fault();
    phase = `after ${name}`;
    for (const s of SERVICES) await relay.ready(s, 90_000);
    // Traffic is accepted again after each fault before the next one.
    await waitFor(() => acceptedIn.size + acceptedOut.size > before + 20, 60_000).catch(() => {
      throw new Error(`no traffic accepted after "${name}"`);
    });
    await sleep(2000);
  }
  streaming = false;
  await Promise.all(streams);

  // Every accepted message arrives: at the business under exactly one id, on the device exactly once.
  const inboundIds = () => {
    const ids = new Map<string, Set<string>>();
    for (const m of shop.messages) ids.set(m.text ?? '', (ids.get(m.text ?? '') ?? new Set()).add(m.id));
    return ids;
  };
  await waitFor(() => [...acceptedIn].every((b) => inboundIds().has(b)), 90_000).catch(() => {
    const missing = [...acceptedIn]
      .filter((b) => !inboundIds().has(b))
      .map((b) => `${b} (${phaseOf.get(b)})`);
    const failures = phones.flatMap((p) => p.failures);
    throw new Error(
      `${missing.length} accepted user messages never reached the business: ${missing}; ` +
        `untexted webhook messages: ${shop.messages.filter((m) => m.text === undefined).length}; ` +
        `failures: ${JSON.stringify(failures)}`,
    );
  });
  const byWamid = () => new Map(phones.flatMap((p) => p.inbox.map((m) => [m.wamid, p] as const)));
  await waitFor(
    () => [...acceptedOut.values()].every((o) => byWamid().get(o.wamid) === o.phone),
    90_000,
  ).catch(() => {
    const missing = [...acceptedOut.entries()].filter(([, o]) => !byWamid().has(o.wamid));
    throw new Error(`${missing.length} accepted business messages never reached the device: ${missing}`);
  });
  for (const [body, ids] of inboundIds()) expect([body, ids.size]).toEqual([body, 1]);
  for (const p of phones) {
    const wamids = p.inbox.map((m) => m.wamid);
    expect(new Set(wamids).size).toBe(wamids.length);
    const bodies = p.texts();
    expect(new Set(bodies).size).toBe(bodies.length);
  }
  expect(shop.badSignatures).toBe(0);
  expect(acceptedIn.size).toBeGreaterThan(50);
  expect(acceptedOut.size).toBeGreaterThan(50);

  // Every session still carries new messages both ways.
  for (const p of phones) {
    await surely(() => p.sendText(shop.pnid, `after:${p.waId}`));
    const wamid = await surely(() => shop.sendText(relay, p.waId, `reply:${p.waId}`));
    await until(() => shop.messages.find((m) => m.text === `after:${p.waId}`));
    await until(() => p.inbox.find((m) => m.wamid === wamid));
  }
  process.stdout.write(
    `faults: ${acceptedIn.size} user and ${acceptedOut.size} business messages accepted and delivered; ` +
      `${shop.messages.length - inboundIds().size} webhook redeliveries of an already received id\n`,
  );
});
