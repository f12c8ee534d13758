import { MicroBatcher } from '@relay/platform';

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
 * The platform's MicroBatcher does the batching; this adds storage's options and void flushes.
 */
export class BatchWriter<T, R = void> {
  private readonly batcher: MicroBatcher<T, R>;

  constructor(
    flush: (items: T[]) => Promise<FlushOutcome<NoInfer<R>>>,
    opts: { maxBatch: number; maxConcurrent: number },
  ) {
    this.batcher = new MicroBatcher<T, R>(
      async (items) => (await flush(items)) ?? items.map(() => undefined as R),
      opts.maxBatch,
      opts.maxConcurrent,
    );
  }

  add(item: T): Promise<R> {
    return this.batcher.add(item);
  }
}
