import { EventEmitter } from 'node:events';
import { loadConfig } from '../../../src/config/relay-config.js';
import type { RelayConfig } from '../../../src/config/types.js';
import { msToPgTime } from '../../../src/decode/pgoutput.js';
import { RepeatedLines } from '../../../src/outage-log.js';
import { Session } from '../../../src/pipeline/session.js';
import type { Delivery } from '../../../src/sink/delivery.js';
import { ReplicationStream } from '../../../src/source/replication-stream.js';
import { beginMessage, commitMessage, insertMessage, relationMessage } from '../pgoutput-messages.js';
import { capturingLogger } from './relay-setup.js';

export const OUTBOX_COLUMNS = ['id', 'aggregate_type', 'aggregate_id', 'event_type', 'payload', 'headers'];

/** The socket under pg's connection: what ReplicationStream does with it (read, pause, write a status, destroy). */
class FakeSocket extends EventEmitter {
  paused = false;
  destroyed = false;
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  write(_chunk: unknown, done?: () => void): boolean {
    done?.();
    return true;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}

interface Command {
  submit(connection: unknown): void;
  handleCopyData(msg: { chunk: Buffer }): void;
  handleReadyForQuery(): void;
}

export type FakeWalsender = ReturnType<typeof fakeServer>;

/** A pg client whose server says only what the test makes it say: a walsender that hangs says nothing. */
function fakeServer() {
  const socket = new FakeSocket();
  /** Each standby status update the session sent: the flush position it reported, whether it asked for a reply. */
  const statuses: { flushLsn: bigint; replyRequested: boolean }[] = [];
  let command: Command | undefined;
  const connection = {
    stream: socket,
    query: () => undefined,
    sendCopyFromChunk: (msg: Buffer) => void statuses.push({ flushLsn: msg.readBigUInt64BE(9), replyRequested: msg[33] === 1 }),
    // A server that answers ends the command at CopyDone (close()).
    endCopyFrom: () => command!.handleReadyForQuery(),
  };
  const client = Object.assign(new EventEmitter(), {
    connection,
    query: (c: Command) => {
      command = c;
      c.submit(connection);
    },
    end: async () => undefined,
  });
  /** One socket read carrying one CopyData message, as pg hands it over. */
  const read = (chunk: Buffer) => {
    socket.emit('data', chunk);
    command!.handleCopyData({ chunk });
  };
  return {
    client,
    socket,
    statuses,
    /** 'k': the WAL end, the server's send time (0 unless given), whether it asks for a reply. */
    keepalive: (walEnd: bigint, options: { sentAtMs?: number; replyRequested?: boolean } = {}) => {
      const msg = Buffer.alloc(18);
      msg[0] = 0x6b;
      msg.writeBigUInt64BE(walEnd, 1);
      if (options.sentAtMs !== undefined) msg.writeBigInt64BE(msToPgTime(options.sentAtMs), 9);
      msg[17] = options.replyRequested ? 1 : 0;
      read(msg);
    },
    /** XLogData ('w', positions and send time unused) carrying one pgoutput message. */
    xlog: (message: Buffer) => read(Buffer.concat([Buffer.from('w'), Buffer.alloc(24), message])),
  };
}

/**
 * What a session's open() gives it, without a server: a ReplicationStream over a fake walsender (returned) and the
 * slot as pre-flight finds it, confirmed at 0/1000, the first mapped table as relation 0x4001.
 */
export function connectFake(session: Session, config: Pick<RelayConfig, 'postgres' | 'tables'>, slot: { walEnd: bigint; walSenderTimeoutMs: number }): FakeWalsender {
  const server = fakeServer();
  const stream = new ReplicationStream(config.postgres);
  (stream as unknown as { client: unknown }).client = server.client;
  const inner = session as unknown as { slot: unknown; stream: unknown };
  inner.slot = { confirmedFlush: 0x1000n, walStatus: 'reserved', tablesByOid: new Map([[0x4001, config.tables[0]!]]), ...slot, history: { timeline: 1, switchpoints: new Map() } };
  inner.stream = stream;
  return server;
}

/**
 * A started session on a ReplicationStream over a fake walsender: start() without open()'s connection and checks.
 * The delivery side takes events while the window is open (`openWindow`), none while `windowFull`.
 */
export function startFakeSession(flags: Record<string, string> = {}, options: { walSenderTimeoutMs?: number; windowFull?: boolean } = {}) {
  const config = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', ...flags }, required: [] });
  const { logger, lines } = capturingLogger('info');
  let windowFull = options.windowFull ?? false;
  const delivery = { openSession: () => undefined, endSession: () => undefined, committed: () => undefined, push: () => !windowFull } as unknown as Delivery;
  const session = new Session(config, delivery, logger, new RepeatedLines(logger), {}, () => undefined);
  const server = connectFake(session, config, { walEnd: 0x5000n, walSenderTimeoutMs: options.walSenderTimeoutMs ?? 0 });
  session.start({ lsn: 0n, timeline: undefined }, undefined);
  return { session, server, lines, openWindow: () => void (windowFull = false) };
}

/**
 * The outbox's Relation, then transaction 0/2000 (end 0/2010) holding the one event e-1 (an order's OrderPlaced,
 * aggregate `aggregateId`): what the relay tests deliver first.
 */
export function firstTransaction(server: FakeWalsender, aggregateId = 'e-1'): void {
  server.xlog(relationMessage('outbox', OUTBOX_COLUMNS));
  server.xlog(beginMessage(0x2000n, 1));
  server.xlog(insertMessage(['e-1', 'order', aggregateId, 'OrderPlaced', '{}', '{}']));
  server.xlog(commitMessage(0x2000n, 0x2010n));
}
