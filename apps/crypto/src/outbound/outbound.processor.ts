import type { QueryRunner } from 'typeorm';
import {
  type DeviceCiphertext,
  type DevicePlaintext,
  type OutboundFailure,
  type OutboundRequest,
} from '@relay/protocol';
import { inTransaction, withRunner } from '../common/sql';
import { busPublisher, type EventPublisher } from '../common/publisher';
import type { ProcessorDeps } from '../common/processor-deps';
import type { SessionWork } from '../common/session-batch';
import type { ChainOp } from '../signal/protocol';
import type { OutboxEvent } from '../store/outbox.repository';
import { RecipientDevices, type Target } from './recipient-devices';
import { sessionKeyOf, type SessionKey } from '../store/session.repository';

/** What a batch's transaction leaves to publish after the commit. */
interface Encrypted {
  events: OutboxEvent[];
  /** Not recorded (no identity for the number): published, never marked. */
  direct: OutboxEvent[];
  /** msgIds of rows that were behind, published by the transaction (or known stored), marked in it. */
  caught: Set<string>;
  /** msgIds of the batch's recorded events not marked published (its new rows included). */
  unpublished: Set<string>;
}

/**
 * The publish of a batch's new ciphertexts, registered before the commit makes their rows visible: the
 * session lock is released by the COMMIT, so the next batch on a session can find those rows unmarked
 * before this process has even seen the commit's reply. It then waits for this publish instead of
 * publishing them a second time (measured: 4,400 of 10,000 ciphertexts published twice by one process
 * when this was registered after the commit).
 */
class PublishGate {
  readonly ids: string[] = [];
  readonly done: Promise<void>;
  settle!: (outcome: Promise<void>) => void;
  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = (outcome) => outcome.then(resolve, reject);
    });
    // A failed publish is reported by the batch that made it; waiters only follow it.
    this.done.catch(() => undefined);
  }
}

interface Item {
  req: OutboundRequest;
  source: string;
  /** Devices to encrypt for; a bundle when the device has no session yet. */
  targets: Target[];
}

/** Published msgIds remembered per process (about 100 bytes each). */
const RECENT_MAX = 20_000;

/**
 * Encrypts a business's outbound requests for every device of the recipient. Bundles for devices
 * without a session are fetched from gateway before the transaction (no lock is held across the network);
 * the transaction then locks the sessions, encrypts on the workers and commits state + outbox together.
 *
 * A device must receive a session's ciphertexts in the order they were made (libsignal keeps only five
 * old receiver chains), whichever process made them. So the delivery ciphertexts in the outbox carry a
 * published mark, set once JetStream stored them: under the session lock, a batch first publishes its
 * sessions' ciphertexts that were committed but never marked (a publish failed while NATS restarted, or
 * the process died after its commit), and commits only once they are stored. The same msgIds are used,
 * so a publish that did get through earlier makes this one a duplicate, which JetStream drops.
 */
export class OutboundProcessor {
  private readonly devices: RecipientDevices;

  constructor(
    private readonly d: ProcessorDeps,
    options: { rpcTimeoutMs: number; deviceListTtlMs: number },
    private readonly publisher: EventPublisher = busPublisher(d.bus),
  ) {
    this.devices = new RecipientDevices(d.bus, d.clock, options.rpcTimeoutMs, options.deviceListTtlMs);
  }

  /** Ciphertexts this process committed and is publishing (until marked): msgId -> that publish. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /**
   * Ciphertexts this process published lately (JetStream stored them). A batch's lookup can read a row
   * as unmarked just before its mark commits and get the answer after the publisher forgot it (measured:
   * ~2,000 of 10,000 published twice that way); such a row is already in order in DELIVERY.
   */
  private readonly recent = new Set<string>();

  async process(requests: OutboundRequest[]): Promise<(number | Error)[]> {
    const items: Item[] = requests.map((req) => ({ req, source: `out:${req.wamid}`, targets: [] }));
    const known = await withRunner(this.d.ds, (r) =>
      this.d.sessions.devicesWithSession(
        r,
        items.map((it) => ({ pn: it.req.phone_number_id, waId: it.req.to })),
      ),
    );
    const errors = new Map<Item, Error>();
    // One device lookup per recipient in the batch (each bundle spends one-time keys).
    const byRecipient = new Map<string, Item[]>();
    for (const it of items) {
      const k = `${it.req.phone_number_id}|${it.req.to}`;
      byRecipient.set(k, [...(byRecipient.get(k) ?? []), it]);
    }
    await Promise.all(
      [...byRecipient].map(async ([k, its]) => {
        const { phone_number_id: pn, to } = its[0].req;
        try {
          const targets = await this.devices.targets(pn, to, known.get(k) ?? []);
          for (const it of its) it.targets = targets;
        } catch (err) {
          for (const it of its) errors.set(it, err as Error);
        }
      }),
    );
    const live = items.filter((it) => !errors.has(it));
    await this.d.keys.warm(live.map((it) => it.req.phone_number_id));
    const gate = new PublishGate();
    let out: Encrypted = { events: [], direct: [], caught: new Set(), unpublished: new Set() };
    try {
      if (live.length) out = await inTransaction(this.d.ds, (r) => this.encryptAll(r, live, gate));
    } catch (err) {
      // Not committed: nobody can see these rows, and nothing waits for them.
      gate.settle(Promise.reject(err as Error));
      this.forget(gate.ids, gate.done);
      throw err;
    }
    const all = [...out.events, ...out.direct];
    // Batches publish independently and a failure is not retried here: the batch fails (its inputs are
    // redelivered later) and its rows stay unmarked, so whichever batch next locks one of their
    // sessions, in this process or another, publishes them before anything newer of the session. Holding
    // later batches of this process back (or retrying) would add nothing to that order.
    await this.publish(
      all.filter((e) => !out.caught.has(e.msgId)),
      out.unpublished,
      gate,
    );
    const emitted = new Map<string, number>();
    for (const e of all) emitted.set(e.source, (emitted.get(e.source) ?? 0) + 1);
    return items.map((it) => errors.get(it) ?? emitted.get(it.source) ?? 0);
  }

  /**
   * Publishes after the commit, then marks the delivery ciphertexts among `unpublished` (one statement).
   * The batch's new rows were registered under `gate` before the commit; older unmarked rows it
   * re-publishes (a redelivered request) are registered here. Waiters are released when JetStream has
   * stored the events, not after the mark: they hold database connections the mark may need.
   */
  private async publish(events: OutboxEvent[], unpublished: Set<string>, gate: PublishGate): Promise<void> {
    const mark = events
      .filter((e) => e.name === 'delivery.ciphertext' && unpublished.has(e.msgId))
      .map((e) => e.msgId);
    // The batch's new rows are among `mark` and already registered under the gate.
    for (const id of mark) if (!this.inFlight.has(id)) this.inFlight.set(id, gate.done);
    const published = events.length ? this.publisher.publish(events) : Promise.resolve();
    gate.settle(published);
    try {
      await published;
      this.remember(mark);
    } finally {
      this.forget(mark, gate.done);
    }
    if (mark.length) await withRunner(this.d.ds, (r) => this.d.outbox.markPublished(r, mark));
  }

  private forget(ids: string[], publish: Promise<void>): void {
    for (const id of ids) if (this.inFlight.get(id) === publish) this.inFlight.delete(id);
  }

  private remember(ids: string[]): void {
    for (const id of ids) this.recent.add(id);
    // Insertion order: the oldest go first. Lookups lag by milliseconds; this covers seconds of traffic.
    for (const id of this.recent) {
      if (this.recent.size <= RECENT_MAX) break;
      this.recent.delete(id);
    }
  }

  /**
   * Publishes, in commit order, the rows of the locked sessions that are behind (committed, not marked).
   * A row this process is still publishing is not published again: the batch waits for that publish
   * instead (and fails with it). Everything older than such a row was in DELIVERY before its batch
   * committed (that batch held the lock and caught up first), so waiting keeps the order, and saves the
   * duplicate that consecutive batches on one session would otherwise publish.
   */
  private async catchUp(behind: OutboxEvent[]): Promise<Set<string>> {
    const waiting = new Set<Promise<void>>();
    const own: OutboxEvent[] = [];
    const stored: string[] = [];
    for (const e of behind) {
      const publishing = this.inFlight.get(e.msgId);
      if (publishing) waiting.add(publishing);
      else if (this.recent.has(e.msgId)) stored.push(e.msgId);
      else own.push(e);
    }
    await Promise.all([own.length > 0 ? this.publisher.publish(own) : undefined, ...waiting]);
    this.d.metrics.republished.inc({ direction: 'outbound' }, own.length);
    // Marked with the batch: a row already in DELIVERY too (its own mark may not have committed).
    return new Set([...own.map((e) => e.msgId), ...stored]);
  }

  private async encryptAll(runner: QueryRunner, items: Item[], gate: PublishGate): Promise<Encrypted> {
    const identities = await this.d.keys.identities(
      runner,
      items.map((it) => it.req.phone_number_id),
    );
    const keys: SessionKey[] = items.flatMap((it) =>
      identities.has(it.req.phone_number_id)
        ? it.targets.map((t) => ({ pn: it.req.phone_number_id, waId: it.req.to, deviceId: t.deviceId }))
        : [],
    );
    const locking = this.d.metrics.lockWait.startTimer({ direction: 'outbound' });
    const states = await this.d.sessions.lock(runner, keys);
    locking();
    const { done, unpublished, behind } = await this.d.outbox.lookup(
      runner,
      items.map((it) => it.source),
      keys,
    );
    // Ciphertexts of these sessions made earlier and not known to be in DELIVERY go out before anything
    // this batch makes: published while the batch encrypts, and the commit waits for them (a failure
    // fails the batch, nothing of it is committed). Handled here so a rejection while the workers run is
    // not unhandled; awaited below.
    const catchingUp = this.catchUp(behind);
    catchingUp.catch(() => undefined);
    const events: OutboxEvent[] = [];
    const direct: OutboxEvent[] = [];
    const fresh: OutboxEvent[] = [];
    const works = new Map<string, SessionWork & { items: Item[] }>();
    const pending = new Set<Item>();
    const seen = new Set<string>();
    for (const it of items) {
      const prior = done.get(it.source);
      if (prior || seen.has(it.source)) {
        if (prior && !seen.has(it.source)) {
          events.push(...prior);
          this.d.metrics.republished.inc({ direction: 'outbound' }, prior.length);
        }
        seen.add(it.source);
        continue;
      }
      seen.add(it.source);
      if (!identities.has(it.req.phone_number_id)) {
        direct.push(this.failure(it, 'unknown_sender', 'no Signal identity for this phone number'));
        continue;
      }
      const plaintext: DevicePlaintext = {
        v: 1,
        wamid: it.req.wamid,
        sent_at: Date.parse(it.req.accepted_at),
        content: it.req.content,
      };
      const bytes = new Uint8Array(Buffer.from(JSON.stringify(plaintext)));
      for (const t of it.targets) {
        const key = { pn: it.req.phone_number_id, waId: it.req.to, deviceId: t.deviceId };
        const k = sessionKeyOf(key);
        const w = works.get(k) ?? { key, ops: [], items: [] };
        const hasSession = states.get(k)?.session != null || w.ops.some((o) => o.kind === 'bundle');
        const ops: ChainOp[] = [];
        if (!hasSession && t.bundle) ops.push({ kind: 'bundle', bundle: t.bundle });
        ops.push({ kind: 'encrypt', plaintext: bytes });
        for (const op of ops) {
          w.ops.push(op);
          w.items.push(it);
        }
        works.set(k, w);
      }
      pending.add(it);
    }
    const list = [...works.values()];
    const results = await this.d.batch.run(runner, list, identities, states);
    const caught = await catchingUp;
    const produced = new Map<Item, number>();
    list.forEach((w, i) =>
      results[i].results.forEach((r, j) => {
        if (!r.ok || r.kind !== 'encrypt') return;
        const it = w.items[j];
        produced.set(it, (produced.get(it) ?? 0) + 1);
        fresh.push(this.ciphertext(it, w.key.deviceId, r.type, r.ciphertext));
      }),
    );
    for (const it of pending) {
      if (produced.get(it)) continue;
      fresh.push(
        it.targets.length === 0
          ? this.failure(it, 'no_devices', 'the recipient has no registered device')
          : this.failure(it, 'bundle_unavailable', 'no device session could be established'),
      );
    }
    await this.d.batch.persist(runner, list, results, states);
    await this.d.outbox.insert(runner, fresh);
    // Only when something was behind: no statement in the usual case.
    await this.d.outbox.markPublished(runner, [...caught]);
    for (const e of fresh) {
      unpublished.add(e.msgId);
      if (e.name !== 'delivery.ciphertext') continue;
      gate.ids.push(e.msgId);
      this.inFlight.set(e.msgId, gate.done);
    }
    return { events: [...events, ...fresh], direct, caught, unpublished };
  }

  private ciphertext(it: Item, deviceId: number, type: 'prekey' | 'whisper', ct: Uint8Array): OutboxEvent {
    const payload: DeviceCiphertext = {
      wamid: it.req.wamid,
      phone_number_id: it.req.phone_number_id,
      to: { wa_id: it.req.to, device_id: deviceId },
      type,
      ciphertext: Buffer.from(ct).toString('base64'),
      created_at: this.d.clock.now().toISOString(),
    };
    return {
      msgId: `${it.req.wamid}.${it.req.to}.${deviceId}`,
      source: it.source,
      pn: it.req.phone_number_id,
      waId: it.req.to,
      name: 'delivery.ciphertext',
      tokens: { wa_id: it.req.to, device_id: deviceId },
      payload,
    };
  }

  private failure(it: Item, reason: OutboundFailure['reason'], detail: string): OutboxEvent {
    const payload: OutboundFailure = {
      wamid: it.req.wamid,
      phone_number_id: it.req.phone_number_id,
      to: it.req.to,
      reason,
      detail,
      failed_at: this.d.clock.now().toISOString(),
    };
    return {
      msgId: `${it.req.wamid}.failure`,
      source: it.source,
      pn: it.req.phone_number_id,
      waId: it.req.to,
      name: 'outbound.failure',
      tokens: { phone_number_id: it.req.phone_number_id },
      payload,
    };
  }
}
