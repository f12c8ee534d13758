/**
 * A read-through cache with a time to live, for rows that change rarely but are read on every request
 * (tokens, numbers, businesses, quality). Concurrent misses of one key share a single load, so a burst
 * of requests costs one query rather than one each. clear()/delete() also disown loads already in
 * flight: a value read before a change can never be cached after it. `undefined` (not found) is not
 * kept, so a row created elsewhere is seen at the next request.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();
  private readonly loading = new Map<string, Promise<V>>();
  private epoch = 0;

  constructor(
    private readonly ttlMs: () => number,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && hit.until > this.now()) return Promise.resolve(hit.value);
    const pending = this.loading.get(key);
    if (pending) return pending;
    const epoch = this.epoch;
    const p = load().then(
      (value) => {
        if (this.epoch === epoch && this.loading.get(key) === p) {
          this.loading.delete(key);
          if (value === undefined) return value;
          if (this.entries.size >= this.maxEntries) this.entries.clear();
          this.entries.set(key, { value, until: this.now() + this.ttlMs() });
        }
        return value;
      },
      (err: unknown) => {
        if (this.loading.get(key) === p) this.loading.delete(key);
        throw err;
      },
    );
    this.loading.set(key, p);
    return p;
  }

  delete(key: string): void {
    this.entries.delete(key);
    this.loading.delete(key);
    this.epoch++;
  }

  clear(): void {
    this.entries.clear();
    this.loading.clear();
    this.epoch++;
  }
}
