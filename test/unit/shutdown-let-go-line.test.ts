import { describe, expect, it } from 'vitest';
import type { AckTracker } from '../../src/checkpoint/ack-tracker.js';
import { loadConfig } from '../../src/config/relay-config.js';
import type { Lsn } from '../../src/lsn.js';
import { RepeatedLines } from '../../src/outage-log.js';
import { Session } from '../../src/pipeline/session.js';
import type { Delivery } from '../../src/sink/delivery.js';
import { connectFake } from '../support/fakes/replication-session.js';
import { capturingLogger } from '../support/fakes/relay-setup.js';
import { beginMessage, commitMessage } from '../support/pgoutput-messages.js';

interface StreamHandlers {
  onKeepalive(walEnd: Lsn, replyRequested: boolean, sentAtMs: number): void;
}

describe('letting go for a PostgreSQL shutdown', () => {
  it('the line names the position the relay leaves the slot at (its final status), not the one reported before the acknowledgements since', async () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', statusInterval: '10m' }, required: [] });
    const { logger, lines } = capturingLogger('info');
    const delivery = { openSession: () => undefined, endSession: () => undefined } as unknown as Delivery;
    const session = new Session(config, delivery, logger, new RepeatedLines(logger), {}, () => undefined);
    const sent: Lsn[] = [];
    let handlers: StreamHandlers | undefined;
    const inner = session as unknown as { slot: unknown; stream: unknown; tracker: AckTracker };
    inner.slot = { confirmedFlush: 0x1000n, walStatus: 'reserved', tablesByOid: new Map(), walEnd: 0x9000n, walSenderTimeoutMs: 60_000, history: { timeline: 1, switchpoints: new Map() } };
    // Reading paused: the in-flight window is full (Kafka slow).
    inner.stream = {
      finished: false,
      isPaused: true,
      start: (_options: unknown, h: StreamHandlers) => (handlers = h),
      sendStatus: async (lsn: Lsn) => void sent.push(lsn),
      pause: () => undefined,
      close: async () => undefined,
    };
    session.start({ lsn: 0n, timeline: undefined }, undefined);
    // The server's first message: the start position is reported.
    handlers!.onKeepalive(0x1000n, false, 0);
    expect(sent).toEqual([0x1000n]);
    // Kafka acknowledges a transaction before the next status interval.
    const txn = inner.tracker.begin(0x2000n, 0, 7);
    inner.tracker.add(txn);
    inner.tracker.commit(txn, 0x2100n);
    inner.tracker.acknowledge(txn);
    // A side connection was refused: PostgreSQL is shutting down.
    session.serverStopping();
    await session.ended;
    // The final status carries 0/2100: that is where the slot stays.
    expect(sent.at(-1)).toBe(0x2100n);
    const line = lines.find((l) => l.msg.startsWith('PostgreSQL is shutting down and waits for this connection')) as unknown as { reportedLsn: string; windowFull: boolean };
    expect(line).toMatchObject({ windowFull: true, reportedLsn: '0/2100' });
  });

  // Ended as a shutdown (retriable PG_STREAM_FAILED), the local failure was logged at debug only, uncounted, and the
  // relay reconnected instead of halting: it halted only once the server was back and the same message failed again.
  it('while a local failure drains (an undecodable message): the session ends with that failure, not a retriable stream failure', async () => {
    const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', statusInterval: '10m', 'postgres.receiveTimeout': '0' }, required: [] });
    const { logger, lines } = capturingLogger('info');
    // The delivery never drains: the failure waits up to shutdownGrace for it.
    const delivery = { openSession: () => undefined, endSession: () => undefined, committed: () => undefined, push: () => true, whenIdle: () => new Promise(() => undefined) } as unknown as Delivery;
    const session = new Session(config, delivery, logger, new RepeatedLines(logger), {}, () => undefined);
    const server = connectFake(session, config, { walEnd: 0x9000n, walSenderTimeoutMs: 0 });
    session.start({ lsn: 0n, timeline: undefined }, undefined);
    server.xlog(beginMessage(0x2000n, 1));
    server.xlog(commitMessage(0x2000n, 0x2010n).subarray(0, 12));
    session.serverStopping();
    expect((await session.ended)?.code).toBe('PG_PROTOCOL');
    expect(lines.map((l) => l.msg)).toContain('PostgreSQL is shutting down and waits for this connection: disconnecting before the failure that stopped reading was drained');
  });
});
