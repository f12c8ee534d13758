import {
  AckPolicy,
  DeliverPolicy,
  headers as natsHeaders,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
  type PubAck,
  type StoredMsg,
  type Subscription,
} from 'nats';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import {
  EVENTS,
  NOTIFICATIONS,
  RPCS,
  ProtocolValidationError,
  RpcError,
  eventFilter,
  eventSubject,
  notifyFilter,
  notifySubject,
  parsePayload,
  rpcSubject,
  streamName,
  SUBJECT_VERSION,
  consumesWholeStream,
  type EventName,
  type EventPayload,
  type NotifyName,
  type NotifyPayload,
  type RpcName,
  type RpcReply,
  type RpcRequest,
  type RpcResponse,
  type ServiceName,
} from '@relay/protocol';
import { decodeJson, encodeJson } from './codec';
import { isNotFound } from './streams';
import { JsPublisher } from './js-publisher';

export type TokenValues<N extends EventName> = Record<(typeof EVENTS)[N]['tokens'][number], string | number>;

/** Thrown by a handler for input that will never succeed: the message is terminated, not retried. */
export class PermanentError extends Error {
  override readonly name = 'PermanentError';
}

export interface EventMeta {
  subject: string;
  streamSeq: number;
  deliveryCount: number;
  /** Header Nats-Msg-Id of the publish: the producer's idempotency key. */
  msgId?: string;
  /**
   * Stream sequence of the previous message on the same subject when this one was stored (0: none), if
   * the producer published with that expectation (see SubjectSequencer); JetStream refused the publish
   * had it been wrong. Absent for messages published without it.
   */
  prevSubjectSeq?: number;
}

/** Our copy of the expectation JetStream checked, so consumers need not rely on its own header. */
export const PREV_SUBJECT_SEQ_HEADER = 'Relay-Prev-Subject-Seq';

export interface ConsumeOptions {
  /** Durable consumer name; replicas of one service share it, so each message goes to one of them. */
  durable: string;
  /** Leading subject tokens to filter on (e.g. one phone_number_id); default: every tenant. */
  filter?: string[];
  /** Messages handled at once by this process (1 keeps stream order). */
  concurrency?: number;
  ackWaitMs?: number;
  /** Delay before a failed message is redelivered, by attempt. */
  retryDelaysMs?: number[];
  deliverPolicy?: 'all' | 'new';
  /**
   * While a handler runs, tell the server every this many ms that the message is still in progress, so
   * a short ackWaitMs redelivers quickly from a process that died without delaying slow live handlers.
   */
  inProgressEveryMs?: number;
  /**
   * Wait for the server to confirm each ack (default true). A handler that is idempotent by message id
   * may turn this off to save a round trip per message: a lost ack then only causes a redelivery.
   */
  confirmAcks?: boolean;
}

/** An event read back from its stream (not consumed: nothing is acknowledged). */
export interface StoredEvent<N extends EventName> {
  payload: EventPayload<N>;
  subject: string;
  streamSeq: number;
  msgId?: string;
}

export interface ConsumerHandle {
  stop(): Promise<void>;
}

function seqHeader(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

const DEFAULT_RETRY_DELAYS = [200, 1000, 5000, 15000, 30000];

/** nats.js implements direct get on its JetStream manager, but the exported interface omits it. */
export interface DirectGet {
  getMessage(
    stream: string,
    query: { seq: number; next_by_subj?: string } | { last_by_subj: string },
  ): Promise<StoredMsg>;
}
export function directGet(jsm: JetStreamManager): DirectGet {
  const direct = (jsm as JetStreamManager & { direct?: DirectGet }).direct;
  if (!direct) throw new Error('this nats client has no direct get');
  return direct;
}

/**
 * The one NATS surface services use. Every payload is validated against the subject's schema on both
 * sides: a producer cannot publish what the contract forbids, and a consumer drops (terminates) what it
 * cannot parse instead of crashing or retrying it forever.
 */
export class NatsBus {
  private readonly consumers = new Set<ConsumerMessages>();
  private readonly subscriptions = new Set<Subscription>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly processed: Counter<'subject_kind' | 'name' | 'outcome'>;
  private readonly latency: Histogram<'name'>;
  private closing = false;
  private readonly publisher: JsPublisher;

  constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    readonly root: string,
    readonly service: ServiceName,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.publisher = new JsPublisher(nc);
    this.processed = new Counter({
      name: 'relay_nats_messages_total',
      help: 'NATS messages handled, by kind, name and outcome (ack, retry, rejected)',
      labelNames: ['subject_kind', 'name', 'outcome'],
      registers: [registry],
    });
    this.latency = new Histogram({
      name: 'relay_nats_handler_seconds',
      help: 'Handler time per event or RPC name',
      labelNames: ['name'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    });
  }

  /** Publishes an event durably; resolves once JetStream has stored it. */
  async publish<N extends EventName>(
    name: N,
    tokens: TokenValues<N>,
    payload: EventPayload<N>,
    opts: { msgId?: string; timeoutMs?: number; expectLastSubjectSeq?: number } = {},
  ): Promise<PubAck> {
    const subject = eventSubject(this.root, name, tokens);
    const data = parsePayload(subject, EVENTS[name].schema, payload);
    const expected = opts.expectLastSubjectSeq;
    return this.publisher.publish(subject, encodeJson(data), {
      msgId: opts.msgId,
      timeoutMs: opts.timeoutMs ?? 5000,
      expectLastSubjectSeq: expected,
      ...(expected !== undefined ? { headers: { [PREV_SUBJECT_SEQ_HEADER]: String(expected) } } : {}),
    });
  }

  /** Stream sequence of the newest stored event of one concrete subject, 0 when it has none (direct get). */
  async lastSubjectSeq<N extends EventName>(name: N, tokens: TokenValues<N>): Promise<number> {
    const stream = streamName(this.root, EVENTS[name].stream);
    try {
      const m = await directGet(this.jsm).getMessage(stream, {
        last_by_subj: eventSubject(this.root, name, tokens),
      });
      return m.seq;
    } catch (err) {
      if (isNotFound(err)) return 0;
      throw err;
    }
  }

  /** Sends a query to the responder's queue group and returns its validated answer. */
  async request<N extends RpcName>(
    name: N,
    payload: RpcRequest<N>,
    timeoutMs = 5000,
  ): Promise<RpcResponse<N>> {
    const subject = rpcSubject(this.root, name);
    const data = parsePayload(subject, RPCS[name].request, payload);
    const msg = await this.nc.request(subject, encodeJson(data), { timeout: timeoutMs });
    const decoded = decodeJson(msg.data);
    if (!decoded.ok) throw new RpcError('internal', `reply on ${subject}: ${decoded.error}`);
    const reply = decoded.value as RpcReply<unknown>;
    if (reply && reply.ok === false) throw new RpcError(reply.error.code, reply.error.message);
    if (!reply || reply.ok !== true) throw new RpcError('internal', `malformed reply on ${subject}`);
    return parsePayload(subject, RPCS[name].response, reply.data) as RpcResponse<N>;
  }

  /** Answers an RPC; any number of replicas may call this (queue group = service name). */
  respond<N extends RpcName>(name: N, handler: (req: RpcRequest<N>) => Promise<RpcResponse<N>>): void {
    const subject = rpcSubject(this.root, name);
    const sub = this.nc.subscribe(subject, { queue: this.service });
    this.subscriptions.add(sub);
    void (async () => {
      for await (const msg of sub) {
        this.track(
          (async () => {
            const end = this.latency.startTimer({ name });
            const reply = await this.answer(subject, name, msg.data, handler);
            end();
            this.processed.inc({ subject_kind: 'rpc', name, outcome: reply.ok ? 'ok' : reply.error.code });
            if (msg.reply) msg.respond(encodeJson(reply));
          })(),
        );
      }
    })();
  }

  private async answer<N extends RpcName>(
    subject: string,
    name: N,
    data: Uint8Array,
    handler: (req: RpcRequest<N>) => Promise<RpcResponse<N>>,
  ): Promise<RpcReply<RpcResponse<N>>> {
    const decoded = decodeJson(data);
    if (!decoded.ok) return { ok: false, error: { code: 'invalid_payload', message: decoded.error } };
    try {
      const req = parsePayload(subject, RPCS[name].request, decoded.value) as RpcRequest<N>;
      const res = await handler(req);
      return { ok: true, data: parsePayload(subject, RPCS[name].response, res) as RpcResponse<N> };
    } catch (err) {
      if (err instanceof ProtocolValidationError) {
        this.log.warn({ subject, err: err.message }, 'rejected invalid rpc payload');
        return { ok: false, error: { code: 'invalid_payload', message: err.message } };
      }
      if (err instanceof RpcError) return { ok: false, error: { code: err.code, message: err.message } };
      this.log.error({ subject, err: (err as Error).message }, 'rpc handler failed');
      return { ok: false, error: { code: 'internal', message: 'internal error' } };
    }
  }

  /** Best-effort wake-up over core NATS. */
  notify<N extends NotifyName>(
    name: N,
    tokens: Record<(typeof NOTIFICATIONS)[N]['tokens'][number], string | number>,
    payload: NotifyPayload<N>,
  ): void {
    const subject = notifySubject(this.root, name, tokens);
    this.nc.publish(subject, encodeJson(parsePayload(subject, NOTIFICATIONS[name].schema, payload)));
  }

  onNotify<N extends NotifyName>(name: N, handler: (payload: NotifyPayload<N>) => void): void {
    const subject = notifyFilter(this.root, name);
    const sub = this.nc.subscribe(subject);
    this.subscriptions.add(sub);
    void (async () => {
      for await (const msg of sub) {
        const decoded = decodeJson(msg.data);
        const r = decoded.ok ? NOTIFICATIONS[name].schema.safeParse(decoded.value) : undefined;
        if (!r?.success) {
          this.log.warn({ subject: msg.subject }, 'dropped invalid notification');
          continue;
        }
        try {
          handler(r.data as NotifyPayload<N>);
        } catch (err) {
          this.log.error(
            { subject: msg.subject, err: (err as Error).message },
            'notification handler failed',
          );
        }
      }
    })();
  }

  /**
   * Consumes an event from its stream through a durable consumer. Acks after the handler resolves
   * (durable before acknowledged), retries with delay when it throws, terminates input that can never
   * succeed (invalid payload, PermanentError) so one poisoned message never blocks the stream.
   */
  async consume<N extends EventName>(
    name: N,
    opts: ConsumeOptions,
    handler: (payload: EventPayload<N>, meta: EventMeta) => Promise<void>,
  ): Promise<ConsumerHandle> {
    const def = EVENTS[name];
    const stream = streamName(this.root, def.stream);
    const config: Partial<ConsumerConfig> = {
      durable_name: opts.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: opts.deliverPolicy === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
      // None when the event's consumers take the whole stream (consumesWholeStream: why).
      filter_subject:
        !opts.filter?.length && consumesWholeStream(name)
          ? undefined
          : eventFilter(this.root, name, ...(opts.filter ?? [])),
      ack_wait: (opts.ackWaitMs ?? 30_000) * 1e6,
      max_ack_pending: Math.max(1000, (opts.concurrency ?? 1) * 4),
      max_deliver: -1,
    };
    await this.ensureConsumer(stream, config);
    const consumer = await this.js.consumers.get(stream, opts.durable);
    const concurrency = Math.max(1, opts.concurrency ?? 1);
    const messages = await consumer.consume({ max_messages: Math.max(16, concurrency * 2) });
    this.consumers.add(messages);
    const delays = opts.retryDelaysMs ?? DEFAULT_RETRY_DELAYS;
    // Subjects of this event; an unfiltered consumer also receives its stream's other events.
    const prefix = `${this.root}.${SUBJECT_VERSION}.${name}.`;
    const active = new Set<Promise<void>>();
    // One timer for all in-flight messages (a timer per message cost more than the signals themselves).
    const working = new Set<JsMsg>();
    const ticker = opts.inProgressEveryMs
      ? setInterval(() => working.forEach((m) => m.working()), opts.inProgressEveryMs)
      : undefined;
    ticker?.unref();

    const loop = (async () => {
      for await (const m of messages) {
        if (this.closing) {
          m.nak();
          continue;
        }
        if (ticker) working.add(m);
        const p = this.handleEvent(name, prefix, m, handler, delays, opts.confirmAcks !== false).finally(
          () => {
            active.delete(p);
            working.delete(m);
          },
        );
        active.add(p);
        this.track(p);
        if (active.size >= concurrency) await Promise.race(active);
      }
      await Promise.all(active);
      clearInterval(ticker);
    })();
    this.track(loop);
    return {
      stop: async () => {
        clearInterval(ticker);
        messages.stop();
        this.consumers.delete(messages);
        await loop;
      },
    };
  }

  private async handleEvent<N extends EventName>(
    name: N,
    prefix: string,
    m: JsMsg,
    handler: (payload: EventPayload<N>, meta: EventMeta) => Promise<void>,
    delays: number[],
    confirmAck = true,
  ): Promise<void> {
    const end = this.latency.startTimer({ name });
    if (!m.subject.startsWith(prefix)) {
      // Another event of an unfiltered consumer's stream (consumesWholeStream).
      m.ack();
      this.processed.inc({ subject_kind: 'event', name, outcome: 'skipped' });
      end();
      return;
    }
    const meta: EventMeta = {
      subject: m.subject,
      streamSeq: m.seq,
      deliveryCount: m.info.deliveryCount,
      msgId: m.headers?.get('Nats-Msg-Id') || undefined,
      prevSubjectSeq: seqHeader(m.headers?.get(PREV_SUBJECT_SEQ_HEADER)),
    };
    const decoded = decodeJson(m.data);
    let payload: EventPayload<N>;
    try {
      if (!decoded.ok) throw new ProtocolValidationError(m.subject, [{ path: '', message: decoded.error }]);
      payload = parsePayload(m.subject, EVENTS[name].schema, decoded.value) as EventPayload<N>;
    } catch (err) {
      this.log.warn(
        { subject: m.subject, seq: m.seq, err: (err as Error).message },
        'rejected invalid event payload',
      );
      this.processed.inc({ subject_kind: 'event', name, outcome: 'rejected' });
      m.term();
      return;
    }
    try {
      await handler(payload, meta);
      if (confirmAck) await m.ackAck().catch(() => m.ack());
      else m.ack();
      this.processed.inc({ subject_kind: 'event', name, outcome: 'ack' });
    } catch (err) {
      if (err instanceof PermanentError) {
        this.log.warn(
          { subject: m.subject, seq: m.seq, err: err.message },
          'terminated event (permanent failure)',
        );
        this.processed.inc({ subject_kind: 'event', name, outcome: 'rejected' });
        m.term();
      } else {
        const delay = delays[Math.min(m.info.deliveryCount - 1, delays.length - 1)];
        this.log.warn(
          { subject: m.subject, seq: m.seq, err: (err as Error).message, delay },
          'event handler failed, will retry',
        );
        this.processed.inc({ subject_kind: 'event', name, outcome: 'retry' });
        m.nak(delay);
      }
    } finally {
      end();
    }
  }

  /**
   * Reads stored events of one concrete subject backwards along their predecessor stamps
   * (PREV_SUBJECT_SEQ_HEADER): the event at `seq`, then the one it names, and so on until a sequence
   * `known(seq)` says the caller has (or 0). Each step is one direct get by sequence, which costs the
   * server a lookup by sequence instead of a scan for the subject's next message (that scan grows with
   * the stream). Returns the events oldest first, and `complete: false` when an event without a stamp
   * (or one of another subject, or gone) ended the walk early: the caller then reads the rest with
   * readSubject.
   */
  async readChainBack<N extends EventName>(
    name: N,
    tokens: TokenValues<N>,
    seq: number,
    known: (seq: number) => boolean,
  ): Promise<{ events: StoredEvent<N>[]; complete: boolean }> {
    const stream = streamName(this.root, EVENTS[name].stream);
    const subject = eventSubject(this.root, name, tokens);
    const events: StoredEvent<N>[] = [];
    for (let at = seq; at > 0 && !known(at);) {
      let m: StoredMsg;
      try {
        m = await directGet(this.jsm).getMessage(stream, { seq: at });
      } catch (err) {
        if (isNotFound(err)) return { events: events.reverse(), complete: false };
        throw err;
      }
      const prev = seqHeader(m.header?.get(PREV_SUBJECT_SEQ_HEADER));
      if (m.subject !== subject || prev === undefined || prev >= at)
        return { events: events.reverse(), complete: false };
      const e = this.storedEvent(name, m);
      if (e) events.push(e);
      at = prev;
    }
    return { events: events.reverse(), complete: true };
  }

  /**
   * The stored events of one subject that a consumer is missing between `cursor` (the last sequence it
   * applied) and the messages `chain` it holds, found along the chain's predecessor stamps with
   * readChainBack; oldest first. Null when a message without a stamp leaves the walk incomplete (the
   * caller then reads the range with readSubject).
   */
  async readMissing<N extends EventName>(
    name: N,
    tokens: TokenValues<N>,
    chain: { seq: number; prev?: number }[],
    cursor: number,
  ): Promise<StoredEvent<N>[] | null> {
    const newer = chain.filter((c) => c.seq > cursor);
    if (newer.some((c) => c.prev === undefined)) return null;
    const have = new Set(chain.map((c) => c.seq));
    const known = (seq: number) => seq <= cursor || have.has(seq);
    const out: StoredEvent<N>[] = [];
    for (const c of newer.sort((a, b) => b.seq - a.seq)) {
      if (c.prev === undefined || known(c.prev)) continue;
      const walk = await this.readChainBack(name, tokens, c.prev, known);
      if (!walk.complete) return null;
      for (const e of walk.events) have.add(e.streamSeq);
      out.push(...walk.events);
    }
    return out.sort((a, b) => a.streamSeq - b.streamSeq);
  }

  /**
   * Reads the stored events of one concrete subject with stream sequences in [fromSeq, beforeSeq), in
   * order, by direct get (the event's stream must allow direct get). One round trip per event found
   * plus one. Payloads that fail validation are skipped: their consumers terminate them as well.
   */
  async readSubject<N extends EventName>(
    name: N,
    tokens: TokenValues<N>,
    fromSeq: number,
    beforeSeq: number,
  ): Promise<StoredEvent<N>[]> {
    const stream = streamName(this.root, EVENTS[name].stream);
    const subject = eventSubject(this.root, name, tokens);
    const out: StoredEvent<N>[] = [];
    for (let seq = Math.max(1, fromSeq); seq < beforeSeq;) {
      let m: StoredMsg;
      try {
        m = await directGet(this.jsm).getMessage(stream, { seq, next_by_subj: subject });
      } catch (err) {
        if (isNotFound(err)) break;
        throw err;
      }
      if (m.seq >= beforeSeq) break;
      seq = m.seq + 1;
      const e = this.storedEvent(name, m);
      if (e) out.push(e);
    }
    return out;
  }

  /** A message read back by direct get as a validated event; undefined (logged) when it is invalid. */
  private storedEvent<N extends EventName>(name: N, m: StoredMsg): StoredEvent<N> | undefined {
    const decoded = decodeJson(m.data);
    const r = decoded.ok ? EVENTS[name].schema.safeParse(decoded.value) : undefined;
    if (!r?.success) {
      this.log.warn({ subject: m.subject, seq: m.seq }, 'skipped invalid stored event');
      return undefined;
    }
    return {
      payload: r.data as EventPayload<N>,
      subject: m.subject,
      streamSeq: m.seq,
      msgId: m.header?.get('Nats-Msg-Id') || undefined,
    };
  }

  private async ensureConsumer(stream: string, config: Partial<ConsumerConfig>): Promise<void> {
    const durable = config.durable_name ?? '';
    try {
      const info = await this.jsm.consumers.info(stream, durable);
      const update = { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending };
      const had = info.config.filter_subject ?? '';
      const wanted = config.filter_subject ?? '';
      if (had === wanted) {
        await this.jsm.consumers.update(stream, durable, {
          ...update,
          filter_subject: config.filter_subject,
        });
        return;
      }
      try {
        await this.jsm.consumers.update(stream, durable, { ...update, filter_subject: wanted });
      } catch (err) {
        // A server before NATS 2.10 cannot change a durable's filter: the old one selects the same
        // messages (only slower on a deep backlog); recreating the consumer would lose its position.
        this.log.warn(
          { stream, durable, filter: had, wanted, err: (err as Error).message },
          'kept the consumer filter the server would not change',
        );
        await this.jsm.consumers.update(stream, durable, update);
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.jsm.consumers.add(stream, config);
    }
  }

  private track<T>(p: Promise<T>): void {
    const q = p.catch((err: Error) => this.log.error({ err: err.message }, 'nats background task failed'));
    this.inflight.add(q);
    void q.finally(() => this.inflight.delete(q));
  }

  /** Stops taking new work, lets in-flight handlers finish (their acks included), then drains NATS. */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    for (const c of this.consumers) c.stop();
    for (const s of this.subscriptions) s.drain().catch(() => undefined);
    const deadline = new Promise((r) => setTimeout(r, timeoutMs).unref());
    await Promise.race([Promise.allSettled([...this.inflight]), deadline]);
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => undefined);
    this.publisher.close();
  }

  /** Header helper for callers that publish raw (tests, integrators' tools). */
  static headers() {
    return natsHeaders();
  }
}
