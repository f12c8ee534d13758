import { chainsBack } from './subject-sequencer';

describe('chainsBack', () => {
  it('is true when each message names the cursor or the previous one, in any order', () => {
    expect(chainsBack([], 10)).toBe(true);
    expect(chainsBack([{ seq: 40, prev: 10 }], 10)).toBe(true);
    expect(
      chainsBack(
        [
          { seq: 77, prev: 40 },
          { seq: 40, prev: 10 },
        ],
        10,
      ),
    ).toBe(true);
  });

  it('is false when a predecessor is neither the cursor nor in the list', () => {
    expect(chainsBack([{ seq: 77, prev: 40 }], 10)).toBe(false);
    expect(
      chainsBack(
        [
          { seq: 40, prev: 10 },
          { seq: 90, prev: 77 },
        ],
        10,
      ),
    ).toBe(false);
  });

  it('ignores what is at or below the cursor and repeated messages', () => {
    expect(
      chainsBack(
        [
          { seq: 5, prev: 1 },
          { seq: 40, prev: 10 },
          { seq: 40, prev: 10 },
        ],
        10,
      ),
    ).toBe(true);
  });

  it('passes unstamped messages only when they are every sequence after the cursor', () => {
    expect(chainsBack([{ seq: 11 }, { seq: 12 }], 10)).toBe(true);
    expect(chainsBack([{ seq: 11 }, { seq: 13 }], 10)).toBe(false);
    expect(chainsBack([{ seq: 40 }], 10)).toBe(false);
  });
});
