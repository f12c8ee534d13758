import { createInbox, headers as natsHeaders, type Msg, type NatsConnection, type PubAck } from 'nats';
import { decodeJson } from './codec';

/** A publish JetStream refused, shaped like nats.js's errors (`code`, `api_error`) so callers can tell. */
export class JetStreamPublishError extends Error {
  override readonly name = 'JetStreamPublishError';
  constructor(
    message: string,
    readonly code: string,
    readonly api_error?: { code: number; err_code?: number; description: string },
  ) {
    super(message);
  }
}

export interface JsPublishOptions {
  msgId?: string;
  /** JetStream stores the message only if the subject's newest message has this sequence (0: none). */
  expectLastSubjectSeq?: number;
  /** Extra headers stored with the message. */
  headers?: Record<string, string>;
  timeoutMs: number;
}

interface Pending {
  resolve: (ack: PubAck) => void;
  reject: (err: Error) => void;
  deadline: number;
}

const SWEEP_MS = 50;

/**
 * JetStream publish with one reply subscription for all of them. nats.js's own `js.publish` is a request
 * that allocates a timer, a deferred and a "cancelled" error (with its stack trace) per message; on the
 * relay's hot paths that was the largest single cost inside the nats client. Here a publish is one map
 * entry, and one sweeper times out what gets no answer.
 */
export class JsPublisher {
  private readonly inbox = createInbox();
  private readonly pending = new Map<string, Pending>();
  private next = 0;
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor(private readonly nc: NatsConnection) {
    nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => !err && this.onReply(msg) });
    this.sweeper = setInterval(() => this.expire(), SWEEP_MS);
    this.sweeper.unref();
  }

  publish(subject: string, data: Uint8Array, opts: JsPublishOptions): Promise<PubAck> {
    const h = natsHeaders();
    if (opts.msgId) h.set('Nats-Msg-Id', opts.msgId);
    if (opts.expectLastSubjectSeq !== undefined)
      h.set('Nats-Expected-Last-Subject-Sequence', String(opts.expectLastSubjectSeq));
    for (const [k, v] of Object.entries(opts.headers ?? {})) h.set(k, v);
    const token = (this.next++).toString(36);
    return new Promise<PubAck>((resolve, reject) => {
      this.pending.set(token, { resolve, reject, deadline: Date.now() + opts.timeoutMs });
      try {
        this.nc.publish(subject, data, { reply: `${this.inbox}.${token}`, headers: h });
      } catch (err) {
        this.pending.delete(token);
        reject(err as Error);
      }
    });
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const p of this.pending.values()) p.reject(new JetStreamPublishError('connection closed', 'CLOSED'));
    this.pending.clear();
  }

  private onReply(msg: Msg): void {
    const token = msg.subject.slice(this.inbox.length + 1);
    const p = this.pending.get(token);
    if (!p) return; // answered after its timeout
    this.pending.delete(token);
    if (msg.data.length === 0) {
      // A status message: 503 when no stream captures the subject.
      const code = msg.headers?.code ?? 0;
      p.reject(
        new JetStreamPublishError(
          code === 503 ? 'no stream for this subject (no responders)' : `status ${code}`,
          String(code),
        ),
      );
      return;
    }
    const decoded = decodeJson(msg.data);
    const ack = (decoded.ok ? decoded.value : null) as {
      stream?: string;
      seq?: number;
      duplicate?: boolean;
      domain?: string;
      error?: { code: number; err_code?: number; description: string };
    } | null;
    if (ack?.error) {
      p.reject(new JetStreamPublishError(ack.error.description, String(ack.error.code), ack.error));
    } else if (!ack?.stream || typeof ack.seq !== 'number') {
      p.reject(new JetStreamPublishError('invalid publish acknowledgement', 'INVALID_ACK'));
    } else {
      p.resolve({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate === true, domain: ack.domain });
    }
  }

  private expire(): void {
    if (this.pending.size === 0) return;
    const now = Date.now();
    for (const [token, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(token);
      p.reject(new JetStreamPublishError('publish timed out', 'TIMEOUT'));
    }
  }
}
