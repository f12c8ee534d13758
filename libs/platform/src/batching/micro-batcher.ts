interface Entry<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/**
 * Collects items handed in one by one (requests, JetStream messages) into batches that share one
 * database transaction (and, in crypto, one round of worker jobs). A batch
 * closes when it is full or when the event loop has nothing more to add (setImmediate); at most
 * `maxInFlight` batches run at once, and while they run the next batch grows (backpressure turns
 * load into bigger batches, not more transactions). `run` answers each item: a result or an Error.
 */
export class MicroBatcher<T, R> {
  private queue: Entry<T, R>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly run: (items: T[]) => Promise<(R | Error)[]>,
    private readonly maxSize: number,
    private readonly maxInFlight: number,
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
    setImmediate(() => {
      this.scheduled = false;
      this.drain();
    });
  }

  private drain(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.queue.splice(0, this.maxSize);
      this.inFlight++;
      this.run(batch.map((e) => e.item))
        .then(
          (results) =>
            batch.forEach((e, i) => {
              const r = results[i];
              if (r instanceof Error) e.reject(r);
              else e.resolve(r);
            }),
          (err: unknown) => batch.forEach((e) => e.reject(err)),
        )
        .finally(() => {
          this.inFlight--;
          if (this.queue.length > 0) this.schedule();
        });
    }
  }
}
