/** A bucket's stored state: tokens left at a moment (ms since epoch). */
export interface BucketState {
  tokens: number;
  at: number;
}

export interface BucketSpec {
  /** Burst: the most tokens a bucket holds. */
  size: number;
  /** One token comes back every permitMs. */
  permitMs: number;
}

export type TakeResult =
  { allowed: true; state: BucketState } | { allowed: false; state: BucketState; retryAfterMs: number };

/**
 * Token-bucket arithmetic, free of storage: refill for the time elapsed, then take `cost` tokens if
 * there are enough. A clock that went backwards (another replica's skew) refills nothing.
 */
export function takeTokens(
  spec: BucketSpec,
  prev: BucketState | undefined,
  now: number,
  cost = 1,
): TakeResult {
  const elapsed = prev ? Math.max(0, now - prev.at) : 0;
  const available = prev ? Math.min(spec.size, prev.tokens + elapsed / spec.permitMs) : spec.size;
  const at = Math.max(now, prev?.at ?? now);
  if (available >= cost) return { allowed: true, state: { tokens: available - cost, at } };
  return {
    allowed: false,
    state: { tokens: available, at },
    retryAfterMs: Math.ceil((cost - available) * spec.permitMs),
  };
}

/** Time until an untouched bucket is full again: how long its state is worth keeping. */
export function fullRefillMs(spec: BucketSpec): number {
  return spec.size * spec.permitMs;
}

/**
 * Takes up to `wanted` single tokens at once (a batch of concurrent requests on one key). The first
 * `granted` requests pass; the rest wait `retryAfterMs` for the next token.
 */
export function takeUpTo(
  spec: BucketSpec,
  prev: BucketState | undefined,
  now: number,
  wanted: number,
): { granted: number; state: BucketState; retryAfterMs: number } {
  const elapsed = prev ? Math.max(0, now - prev.at) : 0;
  const available = prev ? Math.min(spec.size, prev.tokens + elapsed / spec.permitMs) : spec.size;
  const at = Math.max(now, prev?.at ?? now);
  const granted = Math.min(wanted, Math.floor(available));
  const tokens = available - granted;
  return {
    granted,
    state: { tokens, at },
    retryAfterMs: Math.max(1, Math.ceil((1 - tokens) * spec.permitMs)),
  };
}

/**
 * How far a replica may run ahead of the shared bucket: a lease holds at most `max` tokens taken from
 * the bucket in one compare-and-set, and is dropped `ms` after it was taken. A token is therefore spent
 * at most `ms` after it left the bucket, so in any window of length T every replica together spends at
 * most what the bucket gave out in a window of T + ms: size + (T + ms) / permitMs, i.e. `max` over the
 * limit however many replicas there are (ms = max × permitMs). Fraction 0 (or a bucket too small for a
 * whole token) means no leases: a compare-and-set per request.
 */
export function leasePolicy(spec: BucketSpec, fraction: number): { max: number; ms: number } {
  const max = Math.floor(spec.size * fraction);
  return { max, ms: max * spec.permitMs };
}
