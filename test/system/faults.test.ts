/**
 * Faults under load: every user talks back and forth with the business (each user message is answered
 * by a business reply, several times a second per user), while every service process is killed with
 * SIGKILL in turn (gateway, both crypto processes, business-forwarding, storage) and restarted by the
 * run command's supervisor, and the test's own NATS and Postgres servers are restarted. Afterwards
 * every accepted message has arrived once (one id per message, each id once on the devices), and every
 * Signal session still carries new messages both ways.
 *
 * Back-and-forth is the hard case: every business reply makes the user's next message start a new
 * ratchet chain (and every user message the business's next reply), so a message held by a killed
 * process and handled only after JetStream redelivers it falls more than libsignal's five kept
 * receiver chains behind within seconds. crypto applies each session's envelopes, and storage queues
 * each device's ciphertexts, in stream order whichever process holds them (docs/architecture.md,
 * "Per-session order"), so none may be lost.
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
const acceptedOut = new Map<string, { wamid: string; phone: Phone; phase: string }>();
/** Business messages a device received but could not decrypt. */
const undecryptable: { wamid: string; error: string }[] = [];
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

/**
 * One user's conversation: a message, then the business's reply to it, over and over. A send that gets
 * no answer (a service is down) may still be accepted later: it counts once it is.
 */
async function conversation(phone: Phone): Promise<void> {
  for (let n = 0; streaming; n++) {
    const body = `in:${phone.waId}:${n}`;
    phaseOf.set(body, phase);
    const sent = phone.sendText(shop.pnid, body).then(
      () => acceptedIn.add(body),
      () => undefined,
    );
    await within(sent, 10_000);
    const reply = `out:${phone.waId}:${n}`;
    const wamid = await shop.sendText(relay, phone.waId, reply).catch(() => undefined);
    if (wamid) acceptedOut.set(reply, { wamid, phone, phase });
    // The reply usually reaches the device before the next message: that message starts a new chain.
    await sleep(wamid ? 100 : 500);
  }
}

beforeAll(async () => {
  await Promise.all([nats.start(), pg.start()]);
  await pg.createDatabase();
  relay = new Relay({
    natsUrl: nats.url,
    databaseUrl: pg.url,
    subjectRoot: root,
    env: {
      VERIFICATION_HOOK_URL: await hook.start(),
      VERIFICATION_HOOK_TOKEN: HOOK_TOKEN,
      // A killed business-forwarding leaves its webhook run leased for up to 16 x this + 5 s, and one
      // number's messages go out in order: the default 10 s would hold them longer than the test waits.
      WEBHOOK_TIMEOUT_MS: '2000',
    },
  });
  await relay.start();
  await shop.setUp(relay);
  for (const p of phones) await p.register(relay.url('gateway'), hook);
  await Promise.all(phones.map((p) => p.connect()));
  for (const p of phones)
    p.client.on('decryption_failed', (f) => undecryptable.push({ wamid: f.wamid, error: f.error }));
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
  // Every user writes first: the business may answer within the 24-hour window.
  for (const p of phones) await surely(() => p.sendText(shop.pnid, `hello:${p.waId}`));
  await waitFor(() => phones.every((p) => shop.messages.some((m) => m.from === p.waId)), 30_000);
  const streams = phones.map((p) => conversation(p));
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
    await fault().catch((err: Error) => {
      // What the run command and the services printed says why a process did not come back.
      throw new Error(`${name}: ${err.message}\n--- relay output (tail) ---\n${relay.output.slice(-6000)}`);
    });
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
    const missing = [...acceptedOut.entries()]
      .filter(([, o]) => !byWamid().has(o.wamid))
      .map(([body, o]) => `${body} ${o.wamid} (${o.phase})`);
    throw new Error(
      `${missing.length} accepted business messages never reached the device: ${missing}; ` +
        `undecryptable on the device: ${JSON.stringify(undecryptable)}`,
    );
  });
  for (const [body, ids] of inboundIds()) expect([body, ids.size]).toEqual([body, 1]);
  for (const p of phones) {
    const wamids = p.inbox.map((m) => m.wamid);
    expect(new Set(wamids).size).toBe(wamids.length);
    const bodies = p.texts();
    expect(new Set(bodies).size).toBe(bodies.length);
  }
  // No envelope was reported undecryptable (or failed otherwise) to its device.
  expect(phones.flatMap((p) => p.failures)).toEqual([]);
  expect(undecryptable).toEqual([]);
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
