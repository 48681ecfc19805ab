import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { crashed, logCrashesTo } from '../../src/cli/crashes.js';
import { RelayError } from '../../src/errors.js';

/** The paths relay.exit-reasons' crash test (run, with its logger) does not take. */
describe('an error no handler caught', () => {
  afterEach(() => vi.restoreAllMocks());

  it('before a command logs (an operator command): one INTERNAL error on stderr with its fix and stack, exit 1', () => {
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => written.push(String(chunk)) > 0);
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    crashed(new TypeError('boom'));
    expect(exit.mock.calls).toEqual([[1]]);
    expect(written.join('')).toMatch(/^outbox-relay: INTERNAL: TypeError: boom\n {2}fix: a defect of outbox-relay: report it .*\nTypeError: boom\n {4}at /s);
  });

  it('a rejection with a value that is not an Error, once the command logs: one error line in its log, code INTERNAL and the fix, exit 1', () => {
    const lines: Record<string, unknown>[] = [];
    logCrashesTo(pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }));
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    crashed('a string');
    expect(exit.mock.calls).toEqual([[1]]);
    expect(lines).toEqual([expect.objectContaining({ level: 50, msg: 'crashed', code: 'INTERNAL', err: 'an error no handler caught: a string', fix: expect.stringMatching(/^a defect of outbox-relay/) })]);
  });

  it('once a --json command logs (replay, republish): the error line in its log, and the error as the JSON document on stdout (before, nothing there)', () => {
    const lines: Record<string, unknown>[] = [];
    const stdout: string[] = [];
    logCrashesTo(pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }), true);
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => stdout.push(String(chunk)) > 0);
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    crashed(new RelayError('KAFKA_UNAVAILABLE', 'no broker answered', { hint: 'check kafka.brokers' }));
    expect(exit.mock.calls).toEqual([[1]]);
    expect(lines).toEqual([expect.objectContaining({ level: 50, msg: 'crashed', code: 'KAFKA_UNAVAILABLE', fix: 'check kafka.brokers' })]);
    expect(stdout.map((chunk) => JSON.parse(chunk) as unknown)).toEqual([{ error: { code: 'KAFKA_UNAVAILABLE', message: 'an error no handler caught: no broker answered', fix: 'check kafka.brokers' } }]);
  });

  it('a --json command that crashes after printing its result: stdout still holds that one document, and the error is in the log line (before, a second document made the output unparsable)', async () => {
    // Fresh modules: whether the process printed its result is its own state (cli/json-document.ts).
    vi.resetModules();
    const fresh = await import('../../src/cli/crashes.js');
    const { printResult } = await import('../../src/cli/command-output.js');
    const { RelayError } = await import('../../src/errors.js');
    const lines: Record<string, unknown>[] = [];
    const stdout: string[] = [];
    fresh.logCrashesTo(pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }), true);
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => stdout.push(String(chunk)) > 0);
    vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    printResult('json', { eventsAcknowledged: 3 }, '');
    fresh.crashed(new RelayError('KAFKA_UNAVAILABLE', 'no broker answered', { hint: 'check kafka.brokers' }));
    expect(JSON.parse(stdout.join(''))).toEqual({ eventsAcknowledged: 3 });
    expect(lines).toEqual([expect.objectContaining({ level: 50, msg: 'crashed', code: 'KAFKA_UNAVAILABLE', fix: 'check kafka.brokers' })]);
  });

  // relay.exit-reasons' crash test ended with SIGSEGV 1 run in 20 (CI of e8dae59): process.exit()'s atexit handlers
  // freed OpenSSL's locks while a librdkafka broker thread seeding its jitter took one.
  it('once the librdkafka client is loaded: the exit is its native one (no atexit handlers), with code 1, after the line', async () => {
    vi.resetModules();
    const fresh = await import('../../src/cli/crashes.js');
    const { useNativeExit } = await import('../../src/process-exit.js');
    const order: string[] = [];
    fresh.logCrashesTo(pino({ level: 'info' }, { write: () => void order.push('line') }));
    useNativeExit((code) => void order.push(`native exit ${code}`));
    vi.spyOn(process, 'emit').mockImplementation((() => true) as never);
    vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    fresh.crashed(new TypeError('boom'));
    expect(order).toEqual(['line', 'native exit 1']);
  });

  it('one of the relay\'s own errors, once the command logs: its code and fix are kept in the one error line', () => {
    const lines: Record<string, unknown>[] = [];
    logCrashesTo(pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }));
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    crashed(new RelayError('KAFKA_UNAVAILABLE', 'no broker answered', { hint: 'check kafka.brokers' }));
    expect(exit.mock.calls).toEqual([[1]]);
    expect(lines).toEqual([expect.objectContaining({ level: 50, msg: 'crashed', code: 'KAFKA_UNAVAILABLE', err: 'an error no handler caught: no broker answered', fix: 'check kafka.brokers', stack: expect.stringContaining('no broker answered') })]);
  });
});
