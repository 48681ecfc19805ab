import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RelayError } from '../../src/errors.js';

/** When set, pg_cancel_backend's answer, without a server; else the real withClient (a server that is not there). */
let cancelAnswer: boolean | undefined;
vi.mock('../../src/ops/connection.js', async (original) => {
  const real = await original<typeof import('../../src/ops/connection.js')>();
  return { ...real, withClient: (config: never, what: never, work: never) => (cancelAnswer === undefined ? real.withClient(config, what, work) : Promise.resolve({ rows: [{ cancelled: cancelAnswer }] })) };
});
const { CANCEL_WAIT_MS, OpsInterrupt, exitOnStopSignals } = await import('../../src/cli/ops-interrupt.js');

/** The paths the integration test (cli.slot: a slot create cancelled while it waits) does not take. */
describe('operator command interrupted by a signal', () => {
  let written: string[];
  let exits: number[];

  beforeEach(() => {
    written = [];
    exits = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => written.push(String(chunk)) > 0);
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => written.push(String(chunk)) > 0);
    vi.spyOn(process, 'exit').mockImplementation(((code: number) => {
      exits.push(code);
      // The real exit never returns.
      throw new Error('exited');
    }) as never);
  });
  afterEach(() => {
    cancelAnswer = undefined;
    process.removeAllListeners('SIGINT');
    process.removeAllListeners('SIGTERM');
    vi.restoreAllMocks();
  });

  it('a signal before its connection is open: nothing ran, one INTERRUPTED error and exit 1 at once', () => {
    const interrupt = new OpsInterrupt('slot create', {}, false);
    expect(() => process.emit('SIGTERM', 'SIGTERM')).toThrow('exited');
    expect(exits).toEqual([1]);
    expect(written.join('')).toMatch(/^outbox-relay: INTERRUPTED: slot create interrupted by SIGTERM: before its first statement\n {2}fix: nothing was done: /);
    interrupt.remove();
    // Removed, it does nothing: a later signal changes neither the exit nor the output (nor meets Node's default).
    process.emit('SIGTERM', 'SIGTERM');
    expect(exits).toEqual([1]);
    expect(written.join('').match(/INTERRUPTED/g)).toHaveLength(1);
  });

  it('with --json: the error object on stdout', () => {
    new OpsInterrupt('slot list', {}, true);
    expect(() => process.emit('SIGINT', 'SIGINT')).toThrow('exited');
    expect(JSON.parse(written.join(''))).toMatchObject({ error: { code: 'INTERRUPTED', message: 'slot list interrupted by SIGINT: before its first statement' } });
  });

  it('no signal: a failure stays what it was', async () => {
    const interrupt = new OpsInterrupt('setup', {}, false);
    const failure = new RelayError('PG_QUERY_FAILED', 'refused');
    expect(await interrupt.failure(failure)).toBe(failure);
  });

  it('a second signal: one INTERRUPTED error and exit 1 at once, saying the statement may still complete', () => {
    const interrupt = new OpsInterrupt('slot advance', { host: '127.0.0.1', port: 1, connectionTimeoutMillis: 100 }, false);
    // Connected: the first signal starts a cancel (here against a server that is not there) and returns.
    interrupt.attach({ end: async () => undefined, query: async () => undefined, _getActiveQuery: () => ({}) } as unknown as pg.Client);
    process.emit('SIGINT', 'SIGINT');
    expect(exits).toEqual([]);
    expect(() => process.emit('SIGINT', 'SIGINT')).toThrow('exited');
    expect(exits).toEqual([1]);
    expect(written.join('')).toMatch(/^outbox-relay: INTERRUPTED: slot advance interrupted by SIGINT: a second signal: exiting without waiting for PostgreSQL\n {2}fix: a statement under way may still complete: /);
  });

  it('no statement is sent after the signal (slot advance went on from its cancelled preview to the advance, which PostgreSQL ran)', async () => {
    const interrupt = new OpsInterrupt('slot advance', { host: '127.0.0.1', port: 1, connectionTimeoutMillis: 100 }, false);
    const sent: string[] = [];
    let active: unknown = { text: 'SELECT … pg_logical_slot_peek_binary_changes …' };
    const client = { end: async () => undefined, query: async (text: string) => void sent.push(text), _getActiveQuery: () => active } as unknown as pg.Client;
    interrupt.attach(client);
    await client.query('SELECT 1');
    process.emit('SIGINT', 'SIGINT');
    active = null;
    await expect(client.query('SELECT pg_replication_slot_advance($1, $2)')).rejects.toMatchObject({ code: 'INTERRUPTED' });
    expect(sent).toEqual(['SELECT 1']);
  });

  it('a cancelled statement whose failure the command passed over (slot advance\'s preview count), then the refusal of the next: still "PostgreSQL cancelled the statement under way"', async () => {
    cancelAnswer = true;
    const interrupt = new OpsInterrupt('slot advance', {}, false);
    let rejectPeek!: (err: unknown) => void;
    const client = { end: async () => undefined, query: () => new Promise((_, reject) => (rejectPeek = reject)), _getActiveQuery: () => ({}) } as unknown as pg.Client;
    interrupt.attach(client);
    const peek = client.query('SELECT … pg_logical_slot_peek_binary_changes …').catch(() => 'uncounted');
    process.emit('SIGINT', 'SIGINT');
    rejectPeek(Object.assign(new Error('canceling statement due to user request'), { code: '57014' }));
    expect(await peek).toBe('uncounted');
    const refused = await client.query('SELECT pg_replication_slot_advance($1, $2)').catch((err: unknown) => err);
    expect(await interrupt.failure(refused)).toMatchObject({ message: 'slot advance interrupted by SIGINT: PostgreSQL cancelled the statement under way' });
  });

  // The clean-clone suite of 2026-12-06 saw cli.slot's cancelled slot create reported as "completed before the
  // cancel reached it": the connection was ended as soon as pg_cancel_backend answered, before the statement's
  // 57014 came back on it, so the statement failed with "Connection terminated" instead.
  it('a cancel whose 57014 arrives after pg_cancel_backend answered: waits for it and says the statement was cancelled, not that it completed', async () => {
    cancelAnswer = true;
    const interrupt = new OpsInterrupt('slot create', {}, false);
    let fail!: (err: Error) => void;
    const statement = new Promise((_, reject) => (fail = reject));
    // pg fails a statement still under way when its connection ends.
    const end = async () => fail(new Error('Connection terminated'));
    const client = { end, query: () => statement, _getActiveQuery: () => ({}) } as unknown as pg.Client;
    interrupt.attach(client);
    const creating = client.query('SELECT pg_create_logical_replication_slot($1, $2)').catch((err: unknown) => err);
    process.emit('SIGINT', 'SIGINT');
    setTimeout(() => fail(Object.assign(new Error('canceling statement due to user request'), { code: '57014' })), 50);
    expect(await interrupt.failure(await creating)).toMatchObject({ message: 'slot create interrupted by SIGINT: PostgreSQL cancelled the statement under way' });
  });

  it('a cancel accepted but the statement still under way after the wait: says it may still complete', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      cancelAnswer = true;
      const interrupt = new OpsInterrupt('slot create', {}, false);
      let fail!: (err: Error) => void;
      const statement = new Promise((_, reject) => (fail = reject));
      const client = { end: async () => fail(new Error('Connection terminated')), query: () => statement, _getActiveQuery: () => ({}) } as unknown as pg.Client;
      interrupt.attach(client);
      const creating = client.query('SELECT pg_create_logical_replication_slot($1, $2)').catch((err: unknown) => err);
      process.emit('SIGINT', 'SIGINT');
      await vi.advanceTimersByTimeAsync(CANCEL_WAIT_MS);
      expect(await interrupt.failure(await creating)).toMatchObject({
        message: `slot create interrupted by SIGINT: PostgreSQL accepted the cancel, but the statement under way had not ended ${CANCEL_WAIT_MS / 1000} s later`,
        hint: expect.stringMatching(/^statements before it stay done, and PostgreSQL may still complete it: /),
      });
    } finally {
      vi.useRealTimers();
    }
  });

  it('a cancel accepted while the statement completed first: says so, not that it took no effect', async () => {
    cancelAnswer = true;
    const interrupt = new OpsInterrupt('setup', {}, false);
    const client = { end: async () => undefined, query: async () => undefined, _getActiveQuery: () => ({}) } as unknown as pg.Client;
    interrupt.attach(client);
    process.emit('SIGTERM', 'SIGTERM');
    const refused = await client.query('SELECT 2').catch((err: unknown) => err);
    expect(await interrupt.failure(refused)).toMatchObject({ message: 'setup interrupted by SIGTERM: the statement under way completed before the cancel reached it' });
  });

  it('idle when the signal came: says no statement was under way, without a cancel (pg_cancel_backend is true for an idle backend too)', async () => {
    // Port 1: a cancel attempt would say it could not be cancelled.
    const interrupt = new OpsInterrupt('setup', { host: '127.0.0.1', port: 1, connectionTimeoutMillis: 100 }, false);
    interrupt.attach({ end: async () => undefined, query: async () => undefined, _getActiveQuery: () => null } as unknown as pg.Client);
    process.emit('SIGTERM', 'SIGTERM');
    expect(await interrupt.failure(new Error('Connection terminated'))).toMatchObject({ code: 'INTERRUPTED', message: 'setup interrupted by SIGTERM: no statement was under way', hint: expect.stringMatching(/^statements before the signal stay done, none ran after it: /) });
  });

  it('a cancel that cannot reach PostgreSQL: the failure says the statement may still complete', async () => {
    const interrupt = new OpsInterrupt('setup', { host: '127.0.0.1', port: 1, connectionTimeoutMillis: 100 }, false);
    interrupt.attach({ end: async () => undefined, query: async () => undefined, _getActiveQuery: () => ({}) } as unknown as pg.Client);
    process.emit('SIGTERM', 'SIGTERM');
    const failure = await interrupt.failure(new Error('Connection terminated'));
    expect(failure).toMatchObject({ code: 'INTERRUPTED', message: expect.stringMatching(/^setup interrupted by SIGTERM: the statement under way could not be cancelled \(/), hint: expect.stringMatching(/^statements before it stay done, and PostgreSQL may still complete it: /) });
  });

  it('a signal received while the bin was loading: the command exits before it connects', async () => {
    vi.resetModules();
    await import('../../src/cli/early-signals.js');
    process.emit('SIGINT', 'SIGINT');
    const { OpsInterrupt: Fresh } = await import('../../src/cli/ops-interrupt.js');
    expect(() => new Fresh('setup', {}, false)).toThrow('exited');
    expect(written.join('')).toMatch(/^outbox-relay: INTERRUPTED: setup interrupted by SIGINT: before its first statement\n/);
  });

  it('exitOnStopSignals (replay until its relay runs): one INTERRUPTED error with its fix, as JSON with --json, exit 1; removed, it does nothing', () => {
    const remove = exitOnStopSignals('replay', true, 'run the same replay command again');
    expect(() => process.emit('SIGTERM', 'SIGTERM')).toThrow('exited');
    expect(exits).toEqual([1]);
    expect(JSON.parse(written.join(''))).toEqual({ error: { code: 'INTERRUPTED', message: 'replay interrupted by SIGTERM: before it started', fix: 'nothing was done: run the same replay command again' } });
    remove();
    process.emit('SIGINT', 'SIGINT');
    expect(exits).toEqual([1]);
    expect(written).toHaveLength(1);
  });
});
