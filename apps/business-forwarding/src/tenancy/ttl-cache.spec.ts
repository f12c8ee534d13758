import { TtlCache } from './ttl-cache';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('TtlCache', () => {
  let now = 0;
  const cache = () =>
    new TtlCache<string | undefined>(
      () => 1000,
      () => now,
    );

  beforeEach(() => {
    now = 0;
  });

  it('serves concurrent misses of one key from a single load, then from memory until the TTL lapses', async () => {
    const c = cache();
    let loads = 0;
    const load = async () => `v${++loads}`;
    expect(await Promise.all([c.get('k', load), c.get('k', load), c.get('k', load)])).toEqual([
      'v1',
      'v1',
      'v1',
    ]);
    now = 999;
    expect(await c.get('k', load)).toBe('v1');
    now = 1000;
    expect(await c.get('k', load)).toBe('v2');
    expect(loads).toBe(2);
  });

  it('never keeps a value loaded before clear() or delete(), and lets requests after it load afresh', async () => {
    const c = cache();
    const before = deferred<string>();
    const early = c.get('k', () => before.promise);
    c.delete('k');
    const after = c.get('k', async () => 'new');
    before.resolve('old');
    expect(await early).toBe('old');
    expect(await after).toBe('new');
    expect(await c.get('k', async () => 'reloaded')).toBe('new');

    const slow = deferred<string>();
    const stale = c.get('j', () => slow.promise);
    c.clear();
    slow.resolve('stale');
    await stale;
    expect(await c.get('j', async () => 'fresh')).toBe('fresh');
  });

  it('keeps neither failures nor "not found"', async () => {
    const c = cache();
    await expect(c.get('k', () => Promise.reject(new Error('db down')))).rejects.toThrow('db down');
    expect(await c.get('k', async () => undefined)).toBeUndefined();
    expect(await c.get('k', async () => 'found')).toBe('found');
  });
});
