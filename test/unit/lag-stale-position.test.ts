import { describe, expect, it } from 'vitest';
import { LagTracker } from '../../src/metrics/lag.js';

describe('LagTracker after a reconnect with a backlog', () => {
  it('does not count a confirmation past the last known server position as caught up: the server has sent more since', () => {
    const lag = new LagTracker();
    // Caught up at 0/1000 at t = 1 s; then the replication connection is lost (a network partition: the probe
    // cannot read the server either) while the application goes on writing for 20 minutes.
    lag.serverPosition(0x1000n, 1_000);
    lag.confirmed(0x1000n, 900, 1_000);
    const reconnectAt = 1_000 + 20 * 60_000;
    expect(lag.lagSeconds(reconnectAt)).toBe(1200);
    // The new session delivers the backlog's first transaction, committed a minute into the partition: 19 minutes
    // behind. The last keepalive (0/1000) is 20 minutes old: the server sent this transaction after it, and more.
    lag.confirmed(0x9000n, 61_000, reconnectAt + 50);
    expect(lag.lagSeconds(reconnectAt + 1_000)).toBe(1141);
    // Back at the server's position by a keepalive: caught up.
    lag.serverPosition(0x9000n, reconnectAt + 2_000);
    expect(lag.lagSeconds(reconnectAt + 2_500)).toBe(0.5);
  });
});
