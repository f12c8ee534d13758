import { AckQueue } from './ack-queue';

describe('AckQueue', () => {
  it('groups acks of a few milliseconds into frames of up to 100 wamids, by outcome', async () => {
    const frames: [string[], string][] = [];
    const q = new AckQueue(async (wamids, outcome) => frames.push([wamids, outcome]));
    for (let i = 0; i < 150; i++)
      q.add(`wamid.${String(i).padStart(10, '0')}`, i === 120 ? 'undecryptable' : 'delivered');
    expect(frames.map(([w, o]) => [w.length, o])).toEqual([[100, 'delivered']]); // full frame goes at once
    await new Promise((r) => setTimeout(r, 30));
    expect(frames.map(([w, o]) => [w.length, o])).toEqual([
      [100, 'delivered'],
      [49, 'delivered'],
      [1, 'undecryptable'],
    ]);
    expect(frames.flatMap(([w]) => w)).toHaveLength(150);
  });

  it('flushes on demand and survives a failing send', async () => {
    const sent: string[] = [];
    const q = new AckQueue(async (wamids) => {
      sent.push(...wamids);
      throw new Error('offline');
    });
    q.add('wamid.AAAAAAAAAA', 'delivered');
    q.flush();
    expect(sent).toEqual(['wamid.AAAAAAAAAA']);
  });
});
