interface Entry<T> {
  item: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Per-item outcome of a flush: undefined = written, an Error = that item failed. */
export type FlushOutcome = (Error | undefined)[] | void;

/**
 * Group commit: items queue while a flush runs and the next flush takes them all at once (up to
 * maxBatch), so a busy consumer writes in large transactions while a quiet one writes at once. add()
 * resolves only after the item's transaction committed, so the caller acks only what is durable.
 */
export class BatchWriter<T> {
  private queue: Entry<T>[] = [];
  private flushing = 0;
  private scheduled = false;

  constructor(
    private readonly flush: (items: T[]) => Promise<FlushOutcome>,
    private readonly opts: { maxBatch: number; maxConcurrent: number },
  ) {}

  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // One macrotask tick lets a burst of deliveries join the same batch.
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.flushing < this.opts.maxConcurrent && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      this.flushing++;
      void this.run(batch).finally(() => {
        this.flushing--;
        this.pump();
      });
    }
  }

  private async run(batch: Entry<T>[]): Promise<void> {
    try {
      const outcome = await this.flush(batch.map((e) => e.item));
      batch.forEach((e, i) => {
        const err = outcome ? outcome[i] : undefined;
        if (err) e.reject(err);
        else e.resolve();
      });
    } catch (err) {
      for (const e of batch) e.reject(err);
    }
  }
}
