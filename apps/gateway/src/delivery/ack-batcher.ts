import type { AckFrame } from '@relay/protocol';

const MAX_WAMIDS = 500;

interface Waiting {
  frame: AckFrame;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Coalesces one connection's ack frames: frames read in the same event-loop turn go together, and
 * while a flush is in flight later acks wait and then go together (a device acks each message as it
 * decrypts it, so acks come in bursts). Each frame's promise settles with the flush that carried it.
 */
export class AckBatcher {
  private queue: Waiting[] = [];
  private flushing = false;
  private scheduled = false;

  constructor(private readonly flushFn: (frames: AckFrame[]) => Promise<void>) {}

  add(frame: AckFrame): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      if (this.flushing || this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        if (!this.flushing) void this.run();
      });
    });
  }

  private async run(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch: Waiting[] = [];
      let count = 0;
      while (
        this.queue.length > 0 &&
        (batch.length === 0 || count + this.queue[0].frame.wamids.length <= MAX_WAMIDS)
      ) {
        const w = this.queue.shift() as Waiting;
        count += w.frame.wamids.length;
        batch.push(w);
      }
      try {
        await this.flushFn(batch.map((w) => w.frame));
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.flushing = false;
  }
}
