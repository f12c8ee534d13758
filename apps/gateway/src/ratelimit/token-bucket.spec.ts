import { fullRefillMs, leasePolicy, takeTokens, takeUpTo } from './token-bucket';

const spec = { size: 3, permitMs: 100 };

describe('token bucket', () => {
  it('starts full, empties, then refills one token per permit interval', () => {
    let r = takeTokens(spec, undefined, 1000);
    expect(r).toMatchObject({ allowed: true, state: { tokens: 2 } });
    r = takeTokens(spec, r.state, 1000);
    r = takeTokens(spec, r.state, 1000);
    expect(r.state.tokens).toBe(0);
    const denied = takeTokens(spec, r.state, 1050);
    expect(denied).toMatchObject({ allowed: false, retryAfterMs: 50 });
    expect(takeTokens(spec, r.state, 1100).allowed).toBe(true);
  });

  it('never holds more than its size and ignores a clock that went backwards', () => {
    const r = takeTokens(spec, { tokens: 0, at: 1000 }, 1_000_000);
    expect(r.state.tokens).toBe(2);
    const back = takeTokens(spec, { tokens: 0.5, at: 5000 }, 4000);
    expect(back).toMatchObject({ allowed: false, state: { tokens: 0.5, at: 5000 } });
  });

  it('grants a batch only as many tokens as it holds', () => {
    const r = takeUpTo(spec, { tokens: 2.5, at: 0 }, 0, 5);
    expect(r.granted).toBe(2);
    expect(r.state.tokens).toBeCloseTo(0.5);
    expect(r.retryAfterMs).toBe(50);
    expect(takeUpTo(spec, undefined, 0, 2).granted).toBe(2);
    expect(fullRefillMs(spec)).toBe(300);
  });
});

describe('lease policy', () => {
  it('leases a share of the bucket for as long as the bucket takes to refill it', () => {
    expect(leasePolicy({ size: 60, permitMs: 1000 }, 0.1)).toEqual({ max: 6, ms: 6000 });
    expect(leasePolicy({ size: 300, permitMs: 50 }, 0.1)).toEqual({ max: 30, ms: 1500 });
    // Too small a bucket for a whole token, or fraction 0: exact.
    expect(leasePolicy({ size: 5, permitMs: 120_000 }, 0.1)).toEqual({ max: 0, ms: 0 });
    expect(leasePolicy({ size: 60, permitMs: 1000 }, 0)).toEqual({ max: 0, ms: 0 });
  });
});
