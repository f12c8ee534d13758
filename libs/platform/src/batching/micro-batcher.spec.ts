import { MicroBatcher } from './micro-batcher';

const tick = () => new Promise((r) => setImmediate(r));

describe('MicroBatcher', () => {
  it('groups what arrives in one turn of the event loop, answers each item, and bounds batches in flight', async () => {
    const batches: number[][] = [];
    let running = 0;
    let maxRunning = 0;
    const release: (() => void)[] = [];
    const b = new MicroBatcher<number, string>(
      async (items) => {
        batches.push(items);
        maxRunning = Math.max(maxRunning, ++running);
        await new Promise<void>((r) => release.push(r));
        running--;
        return items.map((i) => (i % 5 === 0 ? new Error(`no ${i}`) : `ok ${i}`));
      },
      3,
      2,
    );
    const first = [1, 2, 3, 4, 5, 6, 7].map((i) => b.add(i).catch((e: Error) => e.message));
    await tick();
    // Full batches of 3, two in flight; the rest waits.
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const later = [8, 9].map((i) => b.add(i).catch((e: Error) => e.message));
    await tick();
    expect(batches).toHaveLength(2);
    release.shift()?.();
    await tick();
    await tick();
    // The waiting items (7) and those added meanwhile (8, 9) form the next batch.
    expect(batches[2]).toEqual([7, 8, 9]);
    while (release.length) release.shift()?.();
    await tick();
    while (release.length) release.shift()?.();
    expect(await Promise.all([...first, ...later])).toEqual([
      'ok 1',
      'ok 2',
      'ok 3',
      'ok 4',
      'no 5',
      'ok 6',
      'ok 7',
      'ok 8',
      'ok 9',
    ]);
    expect(maxRunning).toBe(2);
  });

  it('fails every item of a batch whose run fails', async () => {
    const b = new MicroBatcher<number, number>(() => Promise.reject(new Error('rolled back')), 10, 1);
    await expect(Promise.all([b.add(1), b.add(2)])).rejects.toThrow('rolled back');
    await expect(b.add(3)).rejects.toThrow('rolled back');
  });

  it('rejects every item of a batch that fails as a whole', async () => {
    const b = new MicroBatcher<number, number>(
      async () => {
        throw new Error('db down');
      },
      10,
      1,
    );
    await expect(Promise.all([b.add(1), b.add(2)])).rejects.toThrow('db down');
  });
});
