import type { Logger } from 'pino';
import type { NatsBus } from '@relay/platform';
import type { DeviceConnection } from '../ws/device-connection';

/**
 * Messages asked per storage.pending call. A text of 4096 characters encrypts to at most ~23 KB of
 * base64, so 32 of them keep a reply under NATS's default 1 MiB payload limit.
 */
const PAGE = 32;
/** A short reply smaller than this cannot have been cut for size (NATS's limit is 1 MiB). */
const SHORT_PAGE_MAX_BYTES = 256 * 1024;
const RETRY_MS = [250, 1000, 3000, 10_000];

/**
 * Pushes one connection's queued messages in storage order, keeping at most `window` unacknowledged
 * ones in flight. Storage keeps every message until the device acks it, so whatever was pushed but
 * not acked is pushed again by the next connection (redelivery on reconnect).
 */
export class DeliveryPump {
  /** wamid -> business of each pushed, unacknowledged message. */
  readonly inflight = new Map<string, string>();
  private afterSeq: number | undefined;
  private running = false;
  private again = false;
  private sentEmpty = false;
  /** The last drain stopped because the window was full (not because the queue was empty). */
  private windowFull = false;
  private failures = 0;
  private retryTimer?: NodeJS.Timeout;

  constructor(
    private readonly conn: DeviceConnection,
    private readonly bus: NatsBus,
    private readonly window: number,
    private readonly log: Logger,
  ) {
    conn.onClose(() => clearTimeout(this.retryTimer));
  }

  drain(): void {
    if (!this.conn.open) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.loop()
      .then(() => (this.failures = 0))
      .catch((err: Error) => this.scheduleRetry(err))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.drain();
        }
      });
  }

  /**
   * Acks reopen a full window. When the last drain found the queue empty, there is nothing to fetch
   * until storage announces more (device.pending), so an ack asks storage nothing.
   */
  acked(wamids: string[]): void {
    for (const w of wamids) this.inflight.delete(w);
    if (this.windowFull && this.inflight.size <= this.window / 2) this.drain();
  }

  private async loop(): Promise<void> {
    const to = { wa_id: this.conn.device.waId, device_id: this.conn.device.deviceId };
    do {
      this.again = false;
      this.windowFull = false;
      for (;;) {
        const room = this.window - this.inflight.size;
        if (!this.conn.open) return;
        if (room <= 0) {
          this.windowFull = true;
          return;
        }
        const limit = Math.min(room, PAGE);
        const { items } = await this.bus.request('storage.pending', {
          to,
          ...(this.afterSeq !== undefined ? { after_seq: this.afterSeq } : {}),
          limit,
        });
        for (const item of items) {
          if (this.afterSeq !== undefined && item.seq <= this.afterSeq) continue;
          this.afterSeq = item.seq;
          this.inflight.set(item.wamid, item.phone_number_id);
          const sent = this.conn.send({
            type: 'message',
            wamid: item.wamid,
            from: item.phone_number_id,
            ciphertext_type: item.type,
            ciphertext: item.ciphertext,
            created_at: item.created_at,
          });
          if (!sent) return;
        }
        // A short page ends the backlog, unless it is big: storage may return fewer items than asked
        // to keep a reply within a NATS message, and then one more page is needed to be sure.
        const bytes = items.reduce((n, i) => n + i.ciphertext.length, 0);
        if (items.length === 0 || (items.length < limit && bytes < SHORT_PAGE_MAX_BYTES)) {
          if (!this.sentEmpty) {
            this.sentEmpty = true;
            this.conn.send({ type: 'queue_empty' });
          }
          break;
        }
      }
    } while (this.again);
  }

  private scheduleRetry(err: Error): void {
    const delay = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)];
    this.failures++;
    this.log.warn(
      { err: err.message, device: this.conn.key, delay },
      'draining device queue failed, will retry',
    );
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.drain(), delay);
    this.retryTimer.unref();
  }
}
