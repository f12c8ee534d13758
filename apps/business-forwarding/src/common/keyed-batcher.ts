/**
 * Groups work by key: items added while a batch of the same key is being flushed form the next batch,
 * flushed in arrival order once the current one is done. Each add() settles when its batch commits,
 * so a consumer acks a message only after the batch holding it is durable. Keys flush in parallel.
 */
export class KeyedBatcher<T> {
  private readonly queues = new Map<
    string,
    { item: T; resolve: () => void; reject: (e: unknown) => void }[]
  >();
  private readonly running = new Set<string>();

  constructor(
    private readonly flush: (key: string, items: T[]) => Promise<void>,
    private readonly maxBatch = 256,
  ) {}

  add(key: string, item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      const q = this.queues.get(key) ?? [];
      q.push({ item, resolve, reject });
      this.queues.set(key, q);
      if (!this.running.has(key)) void this.drain(key);
    });
  }

  private async drain(key: string): Promise<void> {
    this.running.add(key);
    try {
      for (;;) {
        const q = this.queues.get(key);
        if (!q || q.length === 0) break;
        const batch = q.splice(0, this.maxBatch);
        try {
          await this.flush(
            key,
            batch.map((b) => b.item),
          );
          for (const b of batch) b.resolve();
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.queues.delete(key);
      this.running.delete(key);
    }
  }
}
