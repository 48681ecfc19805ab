import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import { RelayError } from '../../src/errors.js';
import type { RelayState } from '../../src/pipeline/observer.js';
import type { ReplicationHandlers } from '../../src/source/replication-stream.js';
import { capturingLogger, idleDelivery } from '../support/fakes/relay-setup.js';

/** Sessions started (START_REPLICATION sent) in this file: the first of each relay fails 1 ms later, the next streams. */
let starts = 0;

// Real sessions over a fake replication connection: its checks find a server whose wal_sender_timeout (5m) is
// longer than postgres.receiveTimeout (60s by default), so every session start raises the timeout, and a mapped
// column PostgreSQL will not send (generated), which every session start finds again.
const UNSENT = { table: 'public.outbox', column: 'kind', setting: 'mapping.type', why: '"kind" is a generated column (fake)', fix: 'map another column (fake)' };
vi.mock('../../src/source/preflight.js', () => ({
  preflight: async () => ({ confirmedFlush: 0n, walStatus: 'reserved', tablesByOid: new Map(), walEnd: 0x5000n, walSenderTimeoutMs: 300_000, history: { timeline: 1, switchpoints: new Map() }, unsentColumns: [UNSENT] }),
}));
vi.mock('../../src/source/replication-stream.js', () => ({
  REPLICATION_SESSION: 'the replication session',
  sentAtMs: () => 0,
  ReplicationStream: class {
    finished = false;
    backendPid = null;
    lastReadAtMs = 0;
    async connect(): Promise<void> {}
    start(_options: unknown, handlers: ReplicationHandlers): void {
      if (starts++ % 2 === 0) setTimeout(() => handlers.onEnd(new RelayError('PG_STREAM_FAILED', 'connection lost (fake)', { retriable: true })), 1);
    }
    async sendStatus(): Promise<void> {}
    isPaused(): boolean {
      return false;
    }
    pause(): void {}
    resume(): void {}
    async close(): Promise<void> {
      this.finished = true;
    }
  },
}));

const { Relay } = await import('../../src/pipeline/relay.js');

const RAISED = "postgres.receiveTimeout is shorter than this server's wal_sender_timeout: the replication connection is given up after 300000 ms without a message instead";

/** A relay (a process, in real life) whose first session is lost and whose second streams; stopped then. Its lines. */
async function relayOfTwoSessions(): Promise<{ msg: string; level: number; column?: string }[]> {
  const { logger, lines } = capturingLogger('debug');
  const loaded = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092' }, required: [] });
  const config = { ...loaded, retry: { ...loaded.retry, initialDelayMs: 1, maxDelayMs: 2 }, shutdownGraceMs: 100 };
  const states: RelayState[] = [];
  const relay = new Relay(config, {
    logger,
    sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined } as never,
    createDelivery: idleDelivery as never,
    observer: { stateChanged: (state) => void states.push(state) },
  });
  const startsBefore = starts;
  const outcome = relay.run();
  await vi.waitFor(() => expect({ starts: starts - startsBefore, streaming: states.filter((s) => s === 'streaming').length }).toEqual({ starts: 2, streaming: 2 }));
  await relay.stop({ openTransaction: 'drop' });
  expect(await outcome).toEqual({ state: 'stopped' });
  return lines as never;
}

/** How many of the lines whose message satisfies `which` were logged at each level. */
function byLevel(lines: { msg: string; level: number }[], which: (msg: string) => boolean): { warn: number; info: number; debug: number } {
  const count = (level: number) => lines.filter((l) => which(l.msg) && l.level === level).length;
  return { warn: count(40), info: count(30), debug: count(20) };
}

describe('Relay, sessions on a server whose wal_sender_timeout is longer than postgres.receiveTimeout', () => {
  it('the raised receive timeout is said at info once per relay: its next sessions say it at debug, a new relay (a new process) at info again', async () => {
    const raised = (msg: string) => msg === RAISED;
    expect(byLevel(await relayOfTwoSessions(), raised)).toEqual({ warn: 0, info: 1, debug: 1 });
    // Before: module state in session.ts, shared by every relay of the process (and every test of a file): debug only.
    expect(byLevel(await relayOfTwoSessions(), raised)).toEqual({ warn: 0, info: 1, debug: 1 });
  });
});

describe('Relay, sessions that find a mapped column PostgreSQL will not send', () => {
  it('the warning is said once per relay, its repeats at each later session start (a reconnect) at debug; a new relay (a new process) warns again', async () => {
    const unsent = (msg: string) => msg.includes('PostgreSQL will not send column "kind" (mapping.type)');
    // Before: a warn line at every session start, so each reconnect repeated it.
    expect(byLevel(await relayOfTwoSessions(), unsent)).toEqual({ warn: 1, info: 0, debug: 1 });
    expect(byLevel(await relayOfTwoSessions(), unsent)).toEqual({ warn: 1, info: 0, debug: 1 });
  });
});
