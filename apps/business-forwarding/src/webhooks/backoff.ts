/**
 * Exponential backoff with jitter: base * 2^(attempt-1), capped, then scaled into [50%, 100%] so that
 * a fleet of retries after an outage spreads out instead of arriving at once.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 40));
  return Math.max(1, Math.round(exp * (0.5 + 0.5 * random())));
}
