interface Entry<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

/**
 * Per-item outcome of a flush: a result (undefined for plain writes) or an Error for an item that
 * failed. A flush that returns nothing succeeded for every item.
 */
export type FlushOutcome<R = void> = (R | Error)[] | void;

/**
 * Group commit: items queue while a flush runs and the next flush takes them all at once (up to
 * maxBatch), so a busy caller gets large batches while a quiet one is served at once. add() settles
 * only after the item's flush finished (for writes: its transaction committed, so the caller acks only
 * what is durable); a flush may hand each item a result (reads: the rows of that item's request).
 */
export class BatchWriter<T, R = void> {
  private queue: Entry<T, R>[] = [];
  private flushing = 0;
  private scheduled = false;

  constructor(
    private readonly flush: (items: T[]) => Promise<FlushOutcome<NoInfer<R>>>,
    private readonly opts: { maxBatch: number; maxConcurrent: number },
  ) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
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

  private async run(batch: Entry<T, R>[]): Promise<void> {
    try {
      const outcome = await this.flush(batch.map((e) => e.item));
      batch.forEach((e, i) => {
        const out = outcome ? outcome[i] : undefined;
        if (out instanceof Error) e.reject(out);
        else e.resolve(out as R);
      });
    } catch (err) {
      for (const e of batch) e.reject(err);
    }
  }
}
