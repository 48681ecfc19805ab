import { describe, expect, it } from 'vitest';
import { InFlightWindow } from '../../src/sink/in-flight-window.js';

describe('InFlightWindow', () => {
  it('is full at either limit and reopens only once both are at half (hysteresis)', () => {
    const window = new InFlightWindow({ maxInFlightEvents: 4, maxInFlightBytes: 1000 });
    expect([window.enter(10), window.enter(10), window.enter(10)]).toEqual([true, true, true]);
    expect(window.enter(10)).toBe(false);
    expect(window.leave(1, 10)).toBe(false); // 3 of 4: not yet half
    expect(window.leave(1, 10)).toBe(true);
    expect(window.leave(1, 10)).toBe(false); // reopened once, not again
    const bytes = new InFlightWindow({ maxInFlightEvents: 100, maxInFlightBytes: 1000 });
    expect(bytes.enter(1000)).toBe(false);
    expect(bytes.leave(1, 1000)).toBe(true);
  });

  it('keeps how long it was full: each stretch from the event that filled it to the reopening, the current one included', () => {
    let now = 1000;
    const window = new InFlightWindow({ maxInFlightEvents: 2, maxInFlightBytes: 1000 }, () => now);
    window.enter(1);
    now += 500; // not full: not counted
    window.enter(1);
    expect(window.fullSinceMs).toBe(1500);
    now += 300;
    expect(window.fullMs).toBe(300);
    window.enter(1); // still full: the stretch goes on from where it began
    now += 200;
    expect(window.fullMs).toBe(500);
    expect(window.leave(2, 2)).toBe(true);
    expect(window.fullSinceMs).toBeUndefined();
    now += 1000;
    expect(window.fullMs).toBe(500);
    window.enter(1); // full again (2 of 2) for 250 ms, then the session ends
    now += 250;
    window.clear();
    now += 1000;
    expect(window.fullMs).toBe(750);
    expect(window.fullSinceMs).toBeUndefined();
  });
});
