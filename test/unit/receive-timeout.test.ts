import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import type { RelayError } from '../../src/errors.js';
import { ReplicationStream } from '../../src/source/replication-stream.js';
import { OUTBOX_COLUMNS as COLUMNS, startFakeSession, type FakeWalsender } from '../support/fakes/replication-session.js';
import { beginMessage, commitMessage, insertMessage, relationMessage } from '../support/pgoutput-messages.js';

/** statusInterval 10m: the periodic status updates (which ask for a reply while idle) stay out of the way. */
const startSession = (flags: Record<string, string> = {}, options: { walSenderTimeoutMs?: number; windowFull?: boolean } = {}) => startFakeSession({ statusInterval: '10m', ...flags }, options);

const pings = (server: FakeWalsender) => server.statuses.filter((s) => s.replyRequested).length;

describe('replication receive timeout (postgres.receiveTimeout), as PostgreSQL\'s wal_receiver_timeout', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('silence while reading: a reply is asked for at half the timeout, and at all of it the session ends with PG_STREAM_FAILED, the socket destroyed, no timer left', async () => {
    const { session, server } = startSession();
    server.keepalive(0x5000n);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(pings(server)).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(pings(server)).toBe(1);
    // A walsender that hangs answers nothing; its kernel still takes the status updates.
    await vi.advanceTimersByTimeAsync(29_999);
    expect({ reportable: session.reportable, destroyed: server.socket.destroyed }).toEqual({ reportable: true, destroyed: false });
    await vi.advanceTimersByTimeAsync(1);
    expect({ reportable: session.reportable, destroyed: server.socket.destroyed }).toEqual({ reportable: false, destroyed: true });
    const error = (await session.ended) as RelayError;
    expect(error).toMatchObject({ code: 'PG_STREAM_FAILED', retriable: true, details: { silentMs: 60_000, receiveTimeoutMs: 60_000 } });
    expect(error.message).toContain('PostgreSQL sent nothing on the replication connection for 60 s while the relay read it (receive timeout 1m)');
    expect(error.hint).toContain('postgres.receiveTimeout (--postgres-receive-timeout / OUTBOX_RELAY_POSTGRES_RECEIVE_TIMEOUT)');
    // The status interval and the receive timeout are both cleared: nothing carries over to the next session.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('anything read resets the clock, a part of a message too; the timeout counts from the last read', async () => {
    const { session, server } = startSession();
    for (let i = 0; i < 20; i++) {
      await vi.advanceTimersByTimeAsync(25_000);
      if (i % 2) server.keepalive(0x5000n);
      else server.socket.emit('data', Buffer.from('w'));
    }
    expect({ pings: pings(server), reportable: session.reportable }).toEqual({ pings: 0, reportable: true });
    await vi.advanceTimersByTimeAsync(59_999);
    expect(session.reportable).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(await session.ended).toMatchObject({ code: 'PG_STREAM_FAILED', details: { silentMs: 60_000 } });
  });

  it('silence while reading is paused (the in-flight window full) does not count, and resuming starts the clock again', async () => {
    const { session, server } = startSession({}, { windowFull: true });
    server.xlog(relationMessage('outbox', COLUMNS));
    server.xlog(beginMessage(0x2000n, 1));
    server.xlog(insertMessage(['e-1', 'order', 'o-1', 'OrderPlaced', '{}', '{}']));
    expect(server.socket.paused).toBe(true);
    // Kafka slow for 10 minutes: the keepalives the server sends meanwhile wait in the socket, unread.
    await vi.advanceTimersByTimeAsync(600_000);
    expect({ pings: pings(server), reportable: session.reportable }).toEqual({ pings: 0, reportable: true });
    session.resume();
    await vi.advanceTimersByTimeAsync(59_999);
    expect(session.reportable).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(await session.ended).toMatchObject({ code: 'PG_STREAM_FAILED', details: { silentMs: 60_000 } });
  });

  it('a stop\'s drain (the intake ended, reading paused) is never ended by it: the stop closes the session itself', async () => {
    const { session, server } = startSession();
    server.keepalive(0x5000n);
    session.endIntake();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(session.reportable).toBe(true);
    await session.close();
    expect(await session.ended).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a connection the server ends leaves no timer behind either', async () => {
    const { session, server } = startSession();
    server.keepalive(0x5000n);
    server.client.emit('end');
    expect(await session.ended).toMatchObject({ code: 'PG_STREAM_FAILED', message: 'replication connection closed by the server' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('0 turns it off: an hour of silence ends nothing, and only the status interval runs', async () => {
    const { session, server } = startSession({ 'postgres.receiveTimeout': '0' });
    server.keepalive(0x5000n);
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect({ reportable: session.reportable, destroyed: server.socket.destroyed, timers: vi.getTimerCount() }).toEqual({ reportable: true, destroyed: false, timers: 1 });
    await session.close();
  });

  it('a server whose wal_sender_timeout is longer gets that much (a walsender decoding a large transaction is silent up to half of it), with an info line', async () => {
    const { session, server, lines } = startSession({}, { walSenderTimeoutMs: 300_000 });
    expect(lines.filter((l) => l.msg.startsWith('postgres.receiveTimeout is shorter than this server\'s wal_sender_timeout'))).toHaveLength(1);
    server.keepalive(0x5000n);
    await vi.advanceTimersByTimeAsync(299_999);
    expect(session.reportable).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(await session.ended).toMatchObject({ code: 'PG_STREAM_FAILED', details: { receiveTimeoutMs: 300_000 } });
  });
});

describe('replication connection settings', () => {
  it('postgres.receiveTimeout: 60s by default, from the environment and flags; the replication socket has TCP keepalive', () => {
    const load = (env: Record<string, string>, flags: Record<string, string> = {}) => loadConfig({ env, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', ...flags }, required: [] });
    expect(load({}).receiveTimeoutMs).toBe(60_000);
    expect(load({ OUTBOX_RELAY_POSTGRES_RECEIVE_TIMEOUT: '90s' }).receiveTimeoutMs).toBe(90_000);
    expect(load({}, { 'postgres.receiveTimeout': '0' }).receiveTimeoutMs).toBe(0);
    const config = (new ReplicationStream({}) as unknown as { config: Record<string, unknown> }).config;
    expect(config).toMatchObject({ keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
  });
});

describe('Session.progressed: the server got past where the session started (what ends a reconnect outage)', () => {
  const settled = async (promise: Promise<void>) => Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => setImmediate(() => resolve(false)))]);

  it('not at a keepalive of the start position; at one from beyond it', async () => {
    const { session, server } = startSession({ 'postgres.receiveTimeout': '0' });
    server.keepalive(0x1000n);
    expect(await settled(session.progressed)).toBe(false);
    server.keepalive(0x1001n);
    expect(await settled(session.progressed)).toBe(true);
  });

  it('at the first transaction decoded to its commit', async () => {
    const { session, server } = startSession({ 'postgres.receiveTimeout': '0' });
    server.xlog(relationMessage('outbox', COLUMNS));
    server.xlog(beginMessage(0x2000n, 1));
    server.xlog(insertMessage(['e-1', 'order', 'o-1', 'OrderPlaced', '{}', '{}']));
    expect(await settled(session.progressed)).toBe(false);
    server.xlog(commitMessage(0x2000n, 0x2010n));
    expect(await settled(session.progressed)).toBe(true);
  });
});
