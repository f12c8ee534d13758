import type { AckFrame } from '@relay/protocol';
import { AckBatcher } from './ack-batcher';

const ack = (id: string, ...wamids: string[]): AckFrame => ({ type: 'ack', id, wamids });

describe('AckBatcher', () => {
  it('carries the acks of one turn together, and those that arrive during a flush in the next one', async () => {
    const flushes: string[][] = [];
    let release: () => void = () => undefined;
    const b = new AckBatcher(async (frames) => {
      flushes.push(frames.map((f) => f.id));
      if (flushes.length === 1) await new Promise<void>((r) => (release = r));
    });
    const first = [b.add(ack('a', 'wamid.AAAAAAAAAA')), b.add(ack('b', 'wamid.BBBBBBBBBB'))];
    await new Promise((r) => setImmediate(r));
    expect(flushes).toEqual([['a', 'b']]);
    const rest = [b.add(ack('c', 'wamid.CCCCCCCCCC')), b.add(ack('d', 'wamid.DDDDDDDDDD'))];
    await new Promise((r) => setTimeout(r, 10));
    expect(flushes).toEqual([['a', 'b']]);
    release();
    await Promise.all([...first, ...rest]);
    expect(flushes).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
  });

  it('rejects every frame of a failed flush and keeps going', async () => {
    let fail = true;
    const b = new AckBatcher(async () => {
      if (fail) throw new Error('storage down');
    });
    await expect(b.add(ack('a', 'wamid.AAAAAAAAAA'))).rejects.toThrow('storage down');
    fail = false;
    await expect(b.add(ack('b', 'wamid.BBBBBBBBBB'))).resolves.toBeUndefined();
  });
});
