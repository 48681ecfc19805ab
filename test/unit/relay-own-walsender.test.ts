import { describe, expect, it, vi } from 'vitest';
import { RelayError } from '../../src/errors.js';
import { runRelayFor } from '../support/fakes/relay-setup.js';

const WALSENDER = 4242;
let sessions = 0;
let standbyWaits = 0;

// The first session streams on walsender 4242, which then hangs: the session ends with the receive timeout's
// PG_STREAM_FAILED. That server process goes on holding the slot, so every later pre-flight finds it active,
// held by 4242: the relay's own walsender, not another instance.
vi.mock('../../src/pipeline/session.js', async () => ({
  Session: (await import('../support/fakes/relay-setup.js')).failingSession(
    () => {
      if (sessions++ > 0) throw new RelayError('PG_SLOT_ACTIVE', `replication slot "s" is in use by another connection (pid ${WALSENDER})`, { retriable: true, details: { activePid: WALSENDER } });
    },
    { streams: () => true, progresses: () => false, message: 'PostgreSQL sent nothing (fake)', backendPid: WALSENDER },
  ),
}));

// A standby waits until the holder lets go: this one never does.
vi.mock('../../src/source/standby-wait.js', () => ({
  StandbyWait: class {
    untilReleased(): Promise<void> {
      standbyWaits++;
      return new Promise(() => undefined);
    }
  },
}));

const { Relay } = await import('../../src/pipeline/relay.js');

describe('Relay, its own last walsender still holding the slot after the relay gave its connection up', () => {
  it('retries it as the same outage, bounded by retry.maxDuration, instead of waiting for it as a standby for ever', async () => {
    const { settled, lines } = await runRelayFor(Relay as never, { initialDelayMs: 2, maxDelayMs: 4, maxDurationMs: 200 }, 3000);
    // Before: 'slot in use by another instance: waiting as standby', and the wait never ended.
    expect(standbyWaits).toBe(0);
    expect(lines.filter((l) => l.msg === 'replication connection lost: reconnecting')).toHaveLength(1);
    expect(settled).toMatchObject({ state: 'failed', error: { code: 'RETRIES_EXHAUSTED' } });
    const error = (settled as { error: RelayError }).error;
    expect(error.message).toContain(`replication slot still held by this relay's previous connection (walsender pid ${WALSENDER})`);
    expect(error.hint).toContain(`pg_terminate_backend(${WALSENDER})`);
  });
});
