export const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * When a record counts as created: its event time, but never later than now. A backlog replayed late
 * does not restart its retention clock, and a future-dated timestamp cannot extend it.
 */
export function effectiveTime(eventIso: string, now: Date): Date {
  const t = Date.parse(eventIso);
  return Number.isFinite(t) && t < now.getTime() ? new Date(t) : now;
}

export function plusDays(d: Date, days: number): Date {
  return new Date(d.getTime() + days * DAY_MS);
}
