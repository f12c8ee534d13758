const FLUSH_MS = 10;
const MAX_PER_FRAME = 100;

export type AckOutcome = 'delivered' | 'undecryptable';

/**
 * Collects automatic acks for a few milliseconds and sends them as few frames as possible: a backlog
 * drained on reconnect is acknowledged in frames of up to 100 wamids instead of one frame each. An ack
 * that fails is not retried here: the message stays queued on the relay and comes back on the next
 * connection, where the client acks it again.
 */
export class AckQueue {
  private pending: { wamid: string; outcome: AckOutcome }[] = [];
  private timer?: NodeJS.Timeout;

  constructor(private readonly send: (wamids: string[], outcome: AckOutcome) => Promise<unknown>) {}

  add(wamid: string, outcome: AckOutcome): void {
    this.pending.push({ wamid, outcome });
    if (this.pending.length >= MAX_PER_FRAME) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), FLUSH_MS);
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const items = this.pending;
    this.pending = [];
    for (const outcome of ['delivered', 'undecryptable'] as const) {
      const wamids = items.filter((i) => i.outcome === outcome).map((i) => i.wamid);
      for (let i = 0; i < wamids.length; i += MAX_PER_FRAME) {
        void this.send(wamids.slice(i, i + MAX_PER_FRAME), outcome).catch(() => undefined);
      }
    }
  }
}
