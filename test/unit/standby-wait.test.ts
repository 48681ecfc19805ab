import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';

/** What the fake server answers to a standby's connection: one behaviour per test. */
let connectError: (() => Error) | undefined;

vi.mock('pg', () => ({
  default: {
    Client: class {
      on(): void {}
      async connect(): Promise<void> {
        if (connectError) throw connectError();
      }
      async query(): Promise<{ rows: { held: boolean }[] }> {
        return { rows: [{ held: true }] };
      }
      async end(): Promise<void> {}
    },
  },
}));

const { StandbyWait } = await import('../../src/source/standby-wait.js');

function logged() {
  const lines: { level: number; msg: string; code?: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
  return { lines, logger };
}

describe('StandbyWait', () => {
  it('ends the wait with PG_CONNECT_FAILED when PostgreSQL refuses the standby (a wrong password), instead of polling silently for ever', async () => {
    connectError = () => Object.assign(new Error('password authentication failed for user "relay"'), { code: '28P01' });
    const { logger } = logged();
    const wait = new StandbyWait({}, 's', { publication: 'outbox_relay' }, { initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 60_000, recordMaxAttempts: 1, recordMaxDurationMs: 0 }, logger);
    const abort = new AbortController();
    const result = wait.untilReleased(abort.signal).then(
      () => 'waited on',
      (err: unknown) => err,
    );
    const settled = await Promise.race([result, new Promise((resolve) => setTimeout(() => resolve('still polling'), 500))]);
    abort.abort();
    await result;
    expect(settled).toMatchObject({ code: 'PG_CONNECT_FAILED' });
  });

  it('logs an outage once when it starts and once when it ends (then polls on)', async () => {
    connectError = () => Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const { lines, logger } = logged();
    const wait = new StandbyWait({}, 's', { publication: 'outbox_relay' }, { initialDelayMs: 2, maxDelayMs: 4, maxDurationMs: 60_000, recordMaxAttempts: 1, recordMaxDurationMs: 0 }, logger);
    const abort = new AbortController();
    // Fake time: on a loaded machine 100 ms of real time could hold a single attempt.
    vi.useFakeTimers();
    try {
      const result = wait.untilReleased(abort.signal).catch((err: unknown) => err);
      await vi.advanceTimersByTimeAsync(100);
      connectError = undefined;
      await vi.advanceTimersByTimeAsync(100);
      abort.abort();
      expect(await result).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
    expect(lines.filter((l) => l.level === 40).length).toBe(1);
    expect(lines.filter((l) => l.level === 30).length).toBe(1);
    // Several attempts failed (the later ones at debug): once per outage, not once because it failed once.
    expect(lines.filter((l) => l.level === 20).length).toBeGreaterThan(1);
  });

  it('gives up after retry.maxDuration (RETRIES_EXHAUSTED) instead of retrying for ever', async () => {
    connectError = () => Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const { logger } = logged();
    const wait = new StandbyWait({}, 's', { publication: 'outbox_relay' }, { initialDelayMs: 2, maxDelayMs: 4, maxDurationMs: 150, recordMaxAttempts: 1, recordMaxDurationMs: 0 }, logger);
    const abort = new AbortController();
    const result = wait.untilReleased(abort.signal).then(
      () => 'waited on',
      (err: unknown) => err,
    );
    const settled = await Promise.race([result, new Promise((resolve) => setTimeout(() => resolve('still polling'), 1500))]);
    abort.abort();
    await result;
    expect(settled).toMatchObject({ code: 'RETRIES_EXHAUSTED' });
  });
});
