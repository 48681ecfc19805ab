import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { handleSignals } from '../../src/cli/signals.js';

/** The watchdog after SIGTERM: exit 1 with SHUTDOWN_TIMEOUT for a stop that did not end; the command's code for one that did. */
describe('signal handling: the watchdog at shutdownGrace + 5 s', () => {
  let lines: { level: number; msg: string; code?: string }[];
  let exits: (number | undefined)[];

  beforeEach(() => {
    vi.useFakeTimers();
    lines = [];
    exits = [];
    vi.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      exits.push(code);
      // The real exit never returns: the watchdog's callback must not go on to a second exit.
      throw new Error('exited');
    }) as never);
  });
  afterEach(() => {
    process.removeAllListeners('SIGTERM');
    process.removeAllListeners('SIGINT');
    process.exitCode = undefined;
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  const logger = () => pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });

  it('a stop still draining at the watchdog: one error line with SHUTDOWN_TIMEOUT and its fix, exit 1', async () => {
    handleSignals(logger(), 1000, () => new Promise(() => undefined));
    process.emit('SIGTERM', 'SIGTERM');
    await expect(vi.advanceTimersByTimeAsync(6000)).rejects.toThrow('exited');
    expect(exits).toEqual([1]);
    expect(lines.filter((l) => l.level === 50)).toMatchObject([{ code: 'SHUTDOWN_TIMEOUT', fix: expect.any(String) }]);
  });

  it('a command that nothing re-sends for by itself (republish) gives its own fix: how to run it again', async () => {
    handleSignals(logger(), 1000, () => new Promise(() => undefined), { undrainedFix: "republish stopped before its last batch was acknowledged: run the same command with --since '2026-11-24T08:00:00Z'" });
    process.emit('SIGTERM', 'SIGTERM');
    await expect(vi.advanceTimersByTimeAsync(6000)).rejects.toThrow('exited');
    // Before: the relay's fix, 'events not yet acknowledged are sent again after the restart'.
    expect(lines.filter((l) => l.level === 50)).toMatchObject([{ code: 'SHUTDOWN_TIMEOUT', fix: expect.stringContaining("--since '2026-11-24T08:00:00Z'") }]);
  });

  it('a stop that ended, its command having set exit code 0, with a close still hanging at the watchdog: a warn line and exit with that code, not SHUTDOWN_TIMEOUT', async () => {
    handleSignals(logger(), 1000, async () => {
      process.exitCode = 0;
    });
    process.emit('SIGTERM', 'SIGTERM');
    await expect(vi.advanceTimersByTimeAsync(6000)).rejects.toThrow('exited');
    // The code the command set, passed on explicitly (src/process-exit.ts).
    expect(exits).toEqual([0]);
    expect(process.exitCode).toBe(0);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(['stopped, but closing the clients did not finish within shutdownGrace + 5 s: exiting without waiting for them']);
  });

  it('a second signal after the stop ended and its command set exit code 0 (a client still closing): a warn line and exit with that code, not SHUTDOWN_FORCED', async () => {
    handleSignals(logger(), 1000, async () => {
      process.exitCode = 0;
    });
    process.emit('SIGTERM', 'SIGTERM');
    await vi.advanceTimersByTimeAsync(500);
    expect(() => process.emit('SIGINT', 'SIGINT')).toThrow('exited');
    // The code the command set, passed on explicitly (src/process-exit.ts).
    expect(exits).toEqual([0]);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(['second signal after the stop ended: exiting without waiting for the clients to close']);
  });

  it('a second signal while the stop drains: one error line with SHUTDOWN_FORCED, exit 1', async () => {
    handleSignals(logger(), 1000, () => new Promise(() => undefined));
    process.emit('SIGTERM', 'SIGTERM');
    await vi.advanceTimersByTimeAsync(500);
    expect(() => process.emit('SIGTERM', 'SIGTERM')).toThrow('exited');
    expect(exits).toEqual([1]);
    expect(lines.filter((l) => l.level === 50)).toMatchObject([{ code: 'SHUTDOWN_FORCED', fix: expect.any(String) }]);
  });

  it('a stop that ended before its command decided the outcome (a replay, a republish): the watchdog still reports SHUTDOWN_TIMEOUT', async () => {
    handleSignals(logger(), 1000, async () => undefined);
    process.emit('SIGTERM', 'SIGTERM');
    await expect(vi.advanceTimersByTimeAsync(6000)).rejects.toThrow('exited');
    expect(exits).toEqual([1]);
    expect(lines.filter((l) => l.level === 50)).toMatchObject([{ code: 'SHUTDOWN_TIMEOUT' }]);
  });

  it.each([
    ['the watchdog', 'SHUTDOWN_TIMEOUT', 'shutdown did not finish in time: exiting'],
    ['a second signal', 'SHUTDOWN_FORCED', 'second signal: exiting now'],
  ])('with --json (replay, republish), %s: the error line in the log, and the error as the JSON document on stdout (before, nothing there)', async (_how, code, message) => {
    const stdout: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => stdout.push(String(chunk)) > 0);
    handleSignals(logger(), 1000, () => new Promise(() => undefined), { undrainedFix: 'run it again', json: true });
    process.emit('SIGTERM', 'SIGTERM');
    if (code === 'SHUTDOWN_FORCED') expect(() => process.emit('SIGTERM', 'SIGTERM')).toThrow('exited');
    else await expect(vi.advanceTimersByTimeAsync(6000)).rejects.toThrow('exited');
    expect(exits).toEqual([1]);
    expect(lines.filter((l) => l.level === 50)).toMatchObject([{ code, fix: 'run it again' }]);
    expect(stdout.map((chunk) => JSON.parse(chunk) as unknown)).toEqual([{ error: { code, message, fix: 'run it again' } }]);
  });
});

/** cli/early-signals.ts: its listeners record a signal that came while the bin was loading, for `run` to take over. */
describe('signal handling: a signal received while the bin was loading', () => {
  afterEach(() => {
    process.removeAllListeners('SIGTERM');
    process.removeAllListeners('SIGINT');
    vi.restoreAllMocks();
  });

  // A fresh module: its listeners are installed as main.ts's first import installs them.
  async function freshModules() {
    vi.resetModules();
    return { ...(await import('../../src/cli/early-signals.js')), ...(await import('../../src/cli/signals.js')) };
  }

  it('run: handled as its handlers are installed, once, with the usual line', async () => {
    const { handleSignals: handle } = await freshModules();
    process.emit('SIGTERM', 'SIGTERM');
    const lines: string[] = [];
    let stops = 0;
    handle(pino({ level: 'info' }, { write: (line: string) => void lines.push((JSON.parse(line) as { msg: string }).msg) }), 60_000, async () => {
      stops += 1;
    });
    expect(stops).toBe(1);
    expect(lines).toEqual(['signal received: shutting down']);
    expect(process.listenerCount('SIGTERM')).toBe(1);
  });

  it('two signals while loading are handed over as two (the second one means exit now), more as two', async () => {
    const { onStopSignals } = await freshModules();
    process.emit('SIGINT', 'SIGINT');
    process.emit('SIGINT', 'SIGINT');
    process.emit('SIGTERM', 'SIGTERM');
    const handed: string[] = [];
    onStopSignals((signal) => handed.push(signal));
    expect(handed).toEqual(['SIGINT', 'SIGINT']);
  });

  it('handed over once: a listener installed after the one that took it is not handed it again', async () => {
    const { onStopSignals } = await freshModules();
    process.emit('SIGINT', 'SIGINT');
    const first: string[] = [];
    const second: string[] = [];
    const removeFirst = onStopSignals((signal) => first.push(signal));
    onStopSignals((signal) => second.push(signal));
    removeFirst();
    expect(first).toEqual(['SIGINT']);
    expect(second).toEqual([]);
    process.emit('SIGTERM', 'SIGTERM');
    expect(second).toEqual(['SIGTERM']);
  });
});
