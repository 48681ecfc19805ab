import net from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { slotBounds } from '../../src/checkpoint/start-position.js';
import { withClient } from '../../src/ops/connection.js';
import { ReplicationStream } from '../../src/source/replication-stream.js';
import { SideConnection } from '../../src/source/side-connection.js';
import { StandbyWait } from '../../src/source/standby-wait.js';
import { closeFakePgServers, fakePgServer } from '../support/fake-pg-server.js';

const logger = pino({ level: 'silent' });

/** What the first query of a SideConnection to a fakePgServer(`answers`) ends with; the connection is closed after. */
async function sideConnectionError(answers: 'silent' | 'startup', applicationName: string): Promise<unknown> {
  const connection = new SideConnection(await fakePgServer(answers), applicationName, logger);
  const error = await connection.query('SELECT 1').catch((err: unknown) => err);
  await connection.close();
  return error;
}

/** The relay's lost-connection error (retried as an outage) with `message` in its text and `setting` in its fix. */
function streamFailed(message: string, setting: string) {
  return { code: 'PG_STREAM_FAILED', retriable: true, message: expect.stringContaining(message), hint: expect.stringContaining(setting) };
}

afterEach(async () => {
  vi.restoreAllMocks();
  await closeFakePgServers();
});

describe('PostgreSQL connections beside the replication stream, on a server that stops answering', () => {
  it('SideConnection (heartbeat, slot-lag probe): a query never answered fails with the retriable PG_STREAM_FAILED naming the query, its timeout and postgres.statementTimeout', async () => {
    expect(await sideConnectionError('startup', 'outbox-relay-heartbeat')).toMatchObject(
      streamFailed('PostgreSQL did not answer the outbox-relay-heartbeat query within 1100ms', 'postgres.statementTimeout'),
    );
  });

  it('SideConnection: a server that accepts the TCP connection and never answers the start-up fails with the retriable PG_STREAM_FAILED naming postgres.connectTimeout', async () => {
    expect(await sideConnectionError('silent', 'outbox-relay-slot-lag')).toMatchObject(
      streamFailed('PostgreSQL did not complete a connection for the outbox-relay-slot-lag query within 100ms', 'postgres.connectTimeout'),
    );
  });

  it('StandbyWait: a poll never answered is an outage, retried until retry.maxDuration ends it (RETRIES_EXHAUSTED), not a wait for ever', async () => {
    const wait = new StandbyWait(await fakePgServer('startup'), 's', { publication: 'outbox_relay' }, { initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 1, recordMaxAttempts: 1, recordMaxDurationMs: 0 }, logger);
    const error = await wait.untilReleased(new AbortController().signal).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'RETRIES_EXHAUSTED', message: expect.stringContaining("PostgreSQL did not answer the standby's check whether the slot is held within 1100ms") });
  });

  it('withClient (operator commands): a query never answered fails with PG_CONNECT_FAILED naming the command, the timeout and postgres.statementTimeout', async () => {
    const error = await withClient(await fakePgServer('startup'), 'a query of outbox-relay slot list', async () => 'done').catch((err: unknown) => err);
    expect(error).toMatchObject({
      code: 'PG_CONNECT_FAILED',
      message: expect.stringContaining('PostgreSQL did not answer a query of outbox-relay slot list within 1100ms'),
      hint: expect.stringContaining('postgres.statementTimeout'),
    });
  });

  it('withClient: a server that never answers the start-up fails with PG_CONNECT_FAILED whose fix names postgres.connectTimeout, not the password', async () => {
    const error = await withClient(await fakePgServer('silent'), 'a query of outbox-relay slot list', async () => 'done').catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'PG_CONNECT_FAILED', message: expect.stringContaining('within 100ms (postgres.connectTimeout)'), hint: expect.stringContaining('postgres.connectTimeout') });
    expect((error as { hint: string }).hint).not.toContain('password');
  });

  it("slotBounds (the start position): a query never answered is the retriable PG_STREAM_FAILED the relay's outage handling retries, naming the query, its timeout and postgres.statementTimeout", async () => {
    const error = await slotBounds(await fakePgServer('startup'), 's', { publication: 'outbox_relay' }).catch((err: unknown) => err);
    expect(error).toMatchObject(streamFailed("PostgreSQL did not answer the read of the slot's position (where to start) within 1100ms", 'postgres.statementTimeout'));
  });

  it('ReplicationStream: a pre-flight query never answered fails with the retriable PG_STREAM_FAILED naming the pre-flight, its timeout and postgres.statementTimeout', async () => {
    const stream = new ReplicationStream(await fakePgServer('startup'));
    await stream.connect();
    const error = await stream.query('IDENTIFY_SYSTEM').catch((err: unknown) => err);
    await stream.close();
    expect(error).toMatchObject(streamFailed('PostgreSQL did not answer a pre-flight query of the replication session within 1100ms', 'postgres.statementTimeout'));
  });

  it('SideConnection asks for TCP keepalive (a host that died under an idle connection fails it)', async () => {
    const keepAlive = vi.spyOn(net.Socket.prototype, 'setKeepAlive');
    // pg asks at the socket's connect: within the fake's 100 ms connect timeout that failed now and then on a
    // loaded machine, before the socket connected.
    const connection = new SideConnection({ ...(await fakePgServer('startup')), connectionTimeoutMillis: 10_000 }, 'outbox-relay-heartbeat', logger);
    const query = connection.query('SELECT 1').catch(() => undefined);
    // Closed once asked (the fake never answers the start-up): not after the whole 10 s connect timeout.
    await vi.waitFor(() => expect(keepAlive).toHaveBeenCalled(), { timeout: 10_000, interval: 20 });
    await connection.close();
    await query;
    expect(keepAlive).toHaveBeenCalledWith(true, 10_000);
  });
});
