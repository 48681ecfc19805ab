import type pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CheckpointClient } from '../../src/checkpoint/checkpoint-client.js';

/** Resolved once status reads the checkpoint topic; the read itself never ends (a broker that accepts and never answers). */
let reading!: () => void;
const readStarted = new Promise<void>((resolve) => (reading = resolve));

/** How often the command, done, armed its exit for calls that do not let go (in this process it must not exit). */
let exitsArmed = 0;
vi.mock('../../src/process-exit.js', async (original) => ({ ...(await original<typeof import('../../src/process-exit.js')>()), exitSoonAfterClose: () => void exitsArmed++ }));

// A PostgreSQL without the slot and the publication, answering at once; no statement is under way at the signal.
vi.mock('../../src/ops/connection.js', async (original) => {
  const client = { query: async () => ({ rows: [] }), end: async () => undefined, _getActiveQuery: () => null } as unknown as pg.Client;
  return { ...(await original<typeof import('../../src/ops/connection.js')>()), withClient: (_config: never, _what: never, work: (c: pg.Client) => Promise<unknown>) => work(client) };
});
vi.mock('../../src/ops/relay-health.js', () => ({ fetchRelayHealth: async (url: string) => ({ reachable: false, url, reason: 'connect ECONNREFUSED (fake)' }) }));
vi.mock('../../src/checkpoint/create-checkpoint-client.js', () => ({
  createCheckpointClient: (): CheckpointClient => ({
    readAll: () => {
      reading();
      return new Promise<boolean>(() => undefined);
    },
    createTopic: async () => undefined,
    producer: () => ({ send: async () => undefined, close: async () => undefined }),
  }),
}));
const { statusCommand } = await import('../../src/cli/commands/status.js');

afterEach(() => {
  process.exitCode = undefined;
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  vi.restoreAllMocks();
});

describe('status --kafka-brokers, a stop signal while it reads the checkpoint topic', () => {
  // The signal was handled for PostgreSQL's statements only: the command waited for the read, which librdkafka
  // ends only at its timeout (10 s), before it failed with INTERRUPTED; a read that does not end held it for good.
  it('fails at once with INTERRUPTED, without waiting for the read, and exits without waiting for it either', async () => {
    const stdout: string[] = [];
    const stderr: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => stdout.push(String(chunk)) > 0);
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => stderr.push(String(chunk)) > 0);
    const status = statusCommand().parseAsync(['--postgres-url', 'postgres://u@127.0.0.1/app', '--kafka-brokers', '127.0.0.1:9092'], { from: 'user' });
    await readStarted;
    process.emit('SIGINT', 'SIGINT');
    await status;
    expect(stderr.join('')).toMatch(/^outbox-relay: INTERRUPTED: status interrupted by SIGINT: no statement was under way\n {2}fix: statements before the signal stay done, none ran after it: /);
    // No view: a status cut short is not one.
    expect(stdout).toEqual([]);
    expect(process.exitCode).toBe(1);
    expect(exitsArmed).toBe(1);
  });
});
