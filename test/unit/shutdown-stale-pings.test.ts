import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Session } from '../../src/pipeline/session.js';
import { OUTBOX_COLUMNS as COLUMNS, startFakeSession } from '../support/fakes/replication-session.js';
import { beginMessage, insertMessage, relationMessage } from '../support/pgoutput-messages.js';

/** wal_sender_timeout 10s: the relay reports every 5 s, its half. */
const startSession = () => startFakeSession({ statusInterval: '5s', 'postgres.receiveTimeout': '0' }, { walSenderTimeoutMs: 10_000, windowFull: true });

const stillOpen = async (session: Session) => Promise.race([session.ended.then(() => false), new Promise<boolean>((resolve) => setImmediate(() => resolve(true)))]);

describe('shutdown detection by reply requests: the server\'s send time, not when the relay read them', () => {
  beforeEach(() => void vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] }));
  afterEach(() => void vi.useRealTimers());

  it('pings the walsender queued while the window was full (one per wal_sender_timeout/2), read in one burst when it reopens, are no shutdown', async () => {
    const { session, server, lines, openWindow } = startSession();
    server.xlog(relationMessage('outbox', COLUMNS));
    server.xlog(beginMessage(0x2000n, 1));
    server.xlog(insertMessage(['e-1', 'order', 'o-1', 'OrderPlaced', '{}', '{}']));
    expect(server.socket.paused).toBe(true);
    // Kafka slow for 30 s: the walsender, blocked on its full send buffer at the same WAL position, asked for a
    // reply every 5 s (its wal_sender_timeout/2); those keepalives waited unread in the socket.
    const pausedAt = Date.now();
    await vi.advanceTimersByTimeAsync(30_000);
    openWindow();
    session.resume();
    for (let i = 1; i <= 6; i++) server.keepalive(0x1800n, { sentAtMs: pausedAt + i * 5_000, replyRequested: true });
    expect(lines.filter((l) => l.msg.startsWith('PostgreSQL is shutting down'))).toEqual([]);
    expect(await stillOpen(session)).toBe(true);
    await session.close();
  });

  it('a server shutting down, asking again as soon as each reply arrives, is still recognised', async () => {
    const { session, server, lines } = startSession();
    const now = Date.now();
    for (let i = 0; i < 5; i++) server.keepalive(0x1800n, { sentAtMs: now + i * 2, replyRequested: true });
    expect(lines.filter((l) => l.msg.startsWith('PostgreSQL is shutting down'))).toHaveLength(1);
    expect(await session.ended).toMatchObject({ code: 'PG_STREAM_FAILED', message: 'PostgreSQL is shutting down' });
  });
});
