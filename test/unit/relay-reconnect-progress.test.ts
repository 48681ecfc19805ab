import { describe, expect, it, vi } from 'vitest';
import { runRelayFor } from '../support/fakes/relay-setup.js';

/** Whether each fake session gets past its start before the server fails it. */
let progresses = false;
let sessions = 0;
/** Where each session's keepalives got to, by session (a walsender decoding further each time, then less far). */
const reaches = [0x3000n, 0x5000n, 0x4000n];
const startedWith: bigint[] = [];
/** Where each session's metrics counted transactions up to (read to their commit), by session. */
const counts = [0x2010n, 0x4010n, 0x3010n];
const countedWith: bigint[] = [];

// The server sends its first message (a keepalive), then fails the command with an error nobody classified as
// final, every time: a walsender that fails decoding the same WAL (pgoutput's own errors, a catalog it cannot read).
vi.mock('../../src/pipeline/session.js', async () => ({
  Session: (await import('../support/fakes/relay-setup.js')).failingSession(() => sessions++, {
    streams: () => true,
    progresses: () => progresses,
    message: 'walsender failed decoding (fake)',
    reaches: () => reaches[sessions] ?? 0n,
    counts: () => counts[sessions] ?? 0n,
    started: (reachedBefore, countedBefore) => {
      startedWith.push(reachedBefore);
      countedWith.push(countedBefore);
    },
  }),
}));

const { Relay } = await import('../../src/pipeline/relay.js');

/**
 * Runs the relay until `until` holds or it ends. Not for a fixed time: on a loaded host a few sessions took longer
 * than the 600 ms or 200 ms (retry.maxDuration) tests once gave them.
 */
async function runUntil(until: () => boolean, maxDurationMs: number) {
  const { settled, lines } = await runRelayFor(Relay as never, { initialDelayMs: 2, maxDelayMs: 50, maxDurationMs }, until);
  const count = (msg: string) => lines.filter((l) => l.msg === msg).length;
  return { settled, warns: count('replication connection lost: reconnecting'), backs: count('replication connection back: streaming resumed') };
}

describe('Relay, reconnecting to a server that streams a keepalive and then fails at the same position every time', () => {
  it('keeps the outage open across those sessions: one warn line, and retry.maxDuration ends it with RETRIES_EXHAUSTED', async () => {
    // Before: the first message ended each outage, so every session began a new one (a warn line and an info line
    // each) and retry.maxDuration never ran out: the relay reconnected for ever.
    progresses = false;
    sessions = 0;
    const { settled, warns, backs } = await runUntil(() => false, 200);
    expect(sessions).toBeGreaterThan(1);
    expect({ warns, backs }).toEqual({ warns: 1, backs: 0 });
    expect(settled).toMatchObject({ state: 'failed', error: { code: 'RETRIES_EXHAUSTED', message: expect.stringContaining('walsender failed decoding (fake)') } });
  });

  it("starts each session with the furthest WAL position earlier sessions' keepalives reached (where a keepalive must get past to end the outage), and where their metrics counted transactions up to", async () => {
    progresses = false;
    sessions = 0;
    startedWith.length = 0;
    countedWith.length = 0;
    // Four sessions, however long they take: retry.maxDuration does not end the outage first.
    await runUntil(() => startedWith.length >= 4, 60_000);
    expect(startedWith.slice(0, 4)).toEqual([0n, 0x3000n, 0x5000n, 0x5000n]);
    // What a session streams again is not counted again. Before: every session counted what it read, so a
    // transaction streamed again after a reconnect counted twice in outbox_relay_filtered_total and source_delay_seconds.
    expect(countedWith.slice(0, 4)).toEqual([0n, 0x2010n, 0x4010n, 0x4010n]);
  });

  it('ends the outage when a session streamed past its start, so a later failure is an outage of its own', async () => {
    progresses = true;
    sessions = 0;
    // Stopped once the third session started, the second's failure logged: two outages, the first ended. The bound is
    // wide: a session's failure that no progress followed for 60 s would end the run, where 200 ms of starved CPU could.
    const { settled, warns, backs } = await runUntil(() => sessions > 2, 60_000);
    expect(settled).toBe('running');
    expect(sessions).toBeGreaterThan(2);
    expect(backs).toBeGreaterThan(0);
    expect(warns).toBeGreaterThan(1);
  });
});
