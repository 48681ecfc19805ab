import type pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OpsInterrupt } from '../../src/cli/ops-interrupt.js';
import { RelayError } from '../../src/errors.js';

/** The paths the integration test (cli.slot: a slot create cancelled while it waits) does not take. */
describe('operator command interrupted by a signal', () => {
  afterEach(() => {
    process.removeAllListeners('SIGINT');
    process.removeAllListeners('SIGTERM');
    vi.restoreAllMocks();
  });

  it('a signal while connecting: the command runs no statement and fails with INTERRUPTED, nothing done', async () => {
    const interrupt = new OpsInterrupt('slot create', {});
    process.emit('SIGTERM', 'SIGTERM');
    let refused: unknown;
    try {
      interrupt.attach({} as pg.Client);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(RelayError);
    expect(refused).toMatchObject({ code: 'INTERRUPTED', message: 'slot create interrupted by SIGTERM: before its first statement', hint: expect.stringMatching(/^nothing was done: /) });
    // withClient hands that error back: it stays the command's failure.
    expect(await interrupt.failure(refused)).toBe(refused);
    interrupt.remove();
    expect(process.listenerCount('SIGTERM') + process.listenerCount('SIGINT')).toBe(0);
  });

  it('no signal: a failure stays what it was', async () => {
    const interrupt = new OpsInterrupt('setup', {});
    const failure = new RelayError('PG_QUERY_FAILED', 'refused');
    expect(await interrupt.failure(failure)).toBe(failure);
    interrupt.remove();
  });

  it('a second signal: one INTERRUPTED line and exit 1 at once, saying the statement may still complete', () => {
    const interrupt = new OpsInterrupt('slot advance', {});
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => written.push(String(chunk)) > 0);
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    process.emit('SIGINT', 'SIGINT');
    expect(exit).not.toHaveBeenCalled();
    process.emit('SIGINT', 'SIGINT');
    expect(exit.mock.calls).toEqual([[1]]);
    expect(written.join('')).toMatch(/^outbox-relay: INTERRUPTED: slot advance interrupted by SIGINT: a second signal: exiting without waiting for PostgreSQL\n {2}fix: a statement under way may still complete: /);
    interrupt.remove();
  });

  it('a signal received while the bin was loading counts as the first: the command runs no statement', async () => {
    vi.resetModules();
    await import('../../src/cli/early-signals.js');
    process.emit('SIGINT', 'SIGINT');
    const { OpsInterrupt: Fresh } = await import('../../src/cli/ops-interrupt.js');
    const interrupt = new Fresh('setup', {});
    expect(() => interrupt.attach({} as pg.Client)).toThrow('setup interrupted by SIGINT: before its first statement');
    interrupt.remove();
    expect(process.listenerCount('SIGTERM') + process.listenerCount('SIGINT')).toBe(0);
  });
});
