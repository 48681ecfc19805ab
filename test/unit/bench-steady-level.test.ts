import { describe, expect, it } from 'vitest';
import { nextTopRate, notSustained } from '../../bench/steady.js';

describe("the bench's highest sustained rate", () => {
  it('is a level the relay kept up with (p50 ≤ 50 ms) and whose writers committed at least 90 % of its rate', () => {
    expect(notSustained({ target: 30_000, achieved: 29_000, p50: 12 })).toBeUndefined();
    expect(notSustained({ target: 43_600, achieved: 35_943, p50: 64 })).toBe('not sustained: the relay fell behind (p50 64 ms)');
    expect(notSustained({ target: 37_100, achieved: 32_705, p50: 15 })).toBe('not held: the writers committed only 32,705 events/s');
  });

  it('steps down 15 %, from what the writers committed where they fell short of the rate', () => {
    // The relay fell behind at a rate the writers held: 15 % below that rate.
    expect(nextTopRate({ target: 43_600, achieved: 43_650 })).toBe(37_100);
    // The writers reached 40,664 of 71,100: 15 % below what they reached, not below a rate they never ran at.
    expect(nextTopRate({ target: 71_100, achieved: 40_664 })).toBe(34_600);
  });
});
