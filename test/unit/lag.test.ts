import { describe, expect, it } from 'vitest';
import { LagTracker } from '../../src/metrics/lag.js';

describe('LagTracker', () => {
  it('is 0 before anything was confirmed (a standby)', () => {
    expect(new LagTracker().lagSeconds(1_000_000)).toBe(0);
  });

  it('counts from the start (or a takeover) until something is confirmed: a relay that delivers nothing from its start is behind', () => {
    const lag = new LagTracker();
    lag.counting(10_000);
    lag.serverPosition(500n, 10_500);
    expect(lag.lagSeconds(70_000)).toBe(60);
    // A later start of counting (a session after a reconnect) keeps the first.
    lag.counting(65_000);
    expect(lag.lagSeconds(70_000)).toBe(60);
    // Then a backlog's confirmed commit time rules, older than the start as it may be.
    lag.confirmed(300n, 2_000, 71_000);
    expect(lag.lagSeconds(72_000)).toBe(70);
  });

  it('measures from the commit time of the last confirmed transaction while the relay is behind', () => {
    const lag = new LagTracker();
    lag.serverPosition(500n, 10_000);
    lag.confirmed(300n, 8_000, 10_000);
    expect(lag.lagSeconds(12_000)).toBe(4);
    expect(lag.slotLagBytes()).toBe(200);
  });

  it('stays small on an idle outbox: confirming everything the server sent counts as caught up', () => {
    const lag = new LagTracker();
    lag.serverPosition(100n, 1_000);
    lag.confirmed(100n, 500, 1_000);
    lag.serverPosition(100n, 60_000);
    expect(lag.lagSeconds(60_500)).toBe(0.5);
    expect(lag.slotLagBytes()).toBe(0);
  });

  it('grows while confirmations stop (broker down), even when keepalives keep arriving', () => {
    const lag = new LagTracker();
    lag.serverPosition(100n, 1_000);
    lag.confirmed(100n, 900, 1_000);
    lag.serverPosition(400n, 30_000);
    lag.serverPosition(900n, 61_000);
    expect(lag.lagSeconds(61_000)).toBe(60);
    expect(lag.slotLagBytes()).toBe(800);
  });

  it('never reports a confirmed position or server position going backwards', () => {
    const lag = new LagTracker();
    lag.serverPosition(1000n, 1);
    lag.serverPosition(10n, 2);
    lag.confirmed(900n, 1, 2);
    lag.confirmed(5n, 1, 3);
    expect(lag.slotLagBytes()).toBe(100);
  });
});
