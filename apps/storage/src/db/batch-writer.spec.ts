import { BatchWriter } from './batch-writer';

describe('BatchWriter (group commit)', () => {
  it('batches what arrives while a flush runs and resolves each item after its flush', async () => {
    const flushed: number[][] = [];
    let release: () => void = () => undefined;
    const w = new BatchWriter<number>(
      async (items) => {
        flushed.push(items);
        if (flushed.length === 1) await new Promise<void>((r) => (release = r));
      },
      { maxBatch: 3, maxConcurrent: 1 },
    );
    const first = w.add(0);
    await new Promise((r) => setImmediate(r));
    let laterDone = false;
    const later = Promise.all([1, 2, 3, 4].map((i) => w.add(i))).then(() => (laterDone = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(flushed).toEqual([[0]]);
    expect(laterDone).toBe(false);
    release();
    await first;
    await later;
    expect(flushed).toEqual([[0], [1, 2, 3], [4]]);
  });

  it('fails only the items a flush reports as failed, or all of them when it throws', async () => {
    const w = new BatchWriter<number>(
      async (items) => {
        if (items.includes(99)) throw new Error('db down');
        return items.map((i) => (i % 2 ? new Error(`odd ${i}`) : undefined));
      },
      { maxBatch: 10, maxConcurrent: 2 },
    );
    const results = await Promise.allSettled([w.add(1), w.add(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
    await expect(w.add(99)).rejects.toThrow('db down');
  });

  it('hands each item its own result from a batched flush (a batched read answers every caller)', async () => {
    const flushed: number[][] = [];
    const w = new BatchWriter<number, string>(
      async (items) => {
        flushed.push(items);
        return items.map((i) => (i < 0 ? new Error(`negative ${i}`) : `answer ${i}`));
      },
      { maxBatch: 10, maxConcurrent: 1 },
    );
    const results = await Promise.allSettled([w.add(1), w.add(-2), w.add(3)]);
    expect(flushed).toEqual([[1, -2, 3]]);
    expect(results).toEqual([
      { status: 'fulfilled', value: 'answer 1' },
      { status: 'rejected', reason: new Error('negative -2') },
      { status: 'fulfilled', value: 'answer 3' },
    ]);
  });
});
