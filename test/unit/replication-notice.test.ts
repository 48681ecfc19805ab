import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { classifyPgError, skippedPublicationError } from '../../src/source/pg-errors.js';
import { ReplicationStream, type PgNotice } from '../../src/source/replication-stream.js';
import type { Lsn } from '../../src/lsn.js';

/** AuthenticationOk, then ReadyForQuery (idle). */
const STARTUP_DONE = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0, 0x5a, 0, 0, 0, 5, 0x49]);

function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type);
  header.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([header, body]);
}

/** CopyBothResponse (text, no columns): START_REPLICATION began streaming. */
const COPY_BOTH = message('W', Buffer.from([0, 0, 0]));

/** A primary keepalive in a CopyData message: the server has sent up to `walEnd`. */
function keepalive(walEnd: Lsn): Buffer {
  const body = Buffer.alloc(18);
  body.write('k');
  body.writeBigUInt64BE(walEnd, 1);
  return message('d', body);
}

/** pgoutput's context of a WARNING it raises while it decodes a change. */
const IN_PGOUTPUT = 'slot "outbox_relay", output plugin "pgoutput", in the change callback, associated LSN 0/1BC7708';

/** A NoticeResponse with these fields, as the walsender sends a WARNING. */
function notice(code: string, text: string, detail: string, where?: string): Buffer {
  return message('N', Buffer.from(`SWARNING\0VWARNING\0C${code}\0M${text}\0D${detail}\0${where === undefined ? '' : `W${where}\0`}\0`));
}

const servers: net.Server[] = [];

/** A walsender that, at START_REPLICATION, sends `stream` in one write: one read for the client, as PostgreSQL's buffered output often is. */
async function fakeWalsender(stream: Buffer): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    let started = false;
    socket.on('data', (packet) => {
      if (!started) {
        started = true;
        return void socket.write(STARTUP_DONE);
      }
      if (packet.includes('START_REPLICATION')) socket.write(Buffer.concat([COPY_BOTH, stream]));
      // The client's CopyDone (close()): the command ends with the connection.
      else if (packet[0] === 0x63) socket.destroy();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function stream(sent: Buffer): Promise<{ error: Error | undefined; keepalives: Lsn[]; notices: PgNotice[] }> {
  const port = await fakeWalsender(sent);
  const replication = new ReplicationStream({ host: '127.0.0.1', port, user: 'relay', database: 'app', connectionTimeoutMillis: 1000 });
  await replication.connect();
  const keepalives: Lsn[] = [];
  const notices: PgNotice[] = [];
  const error = await new Promise<Error | undefined>((resolve) => {
    replication.start(
      { slot: 'outbox_relay', startLsn: 0n, publications: ['outbox_relay'], messages: false, receiveTimeoutMs: 0 },
      {
        onData: () => undefined,
        onKeepalive: (walEnd) => {
          keepalives.push(walEnd);
          if (keepalives.length === 2) resolve(undefined);
        },
        onQuiet: () => undefined,
        // As the session does: the skipped publication ends the stream, other notices are logged.
        onNotice: (n) => skippedPublicationError(n, 'outbox_relay', { publication: 'outbox_relay' }) ?? void notices.push(n),
        onEnd: resolve,
      },
    );
  });
  await replication.close();
  return { error, keepalives, notices };
}

describe('the replication stream and PostgreSQL 18 notices', () => {
  it('ends at pgoutput\'s "skipped loading publication" warning: a keepalive past the skipped changes is never passed on, and the error is PG_PUBLICATION_MISSING', async () => {
    // PostgreSQL 18 skips, with this warning, every change written while the publication did not exist. Before,
    // pg emitted it as a notice nobody listened to: the relay confirmed the keepalive after it, moving the slot past
    // events it never sent (measured on PostgreSQL 18.3 and 18.7: no halt, the relay ran on).
    const { error, keepalives, notices } = await stream(
      Buffer.concat([keepalive(0x100n), notice('55000', 'skipped loading publication "outbox_relay"', 'The publication does not exist at this point in the WAL.', IN_PGOUTPUT), keepalive(0x200n)]),
    );
    expect(keepalives).toEqual([0x100n]);
    expect(notices).toEqual([]);
    expect(error).toMatchObject({ code: 'PG_PUBLICATION_MISSING', retriable: false, details: { publication: 'outbox_relay', where: IN_PGOUTPUT } });
    expect(error!.message).toBe('replication slot "outbox_relay" cannot stream past WAL written while publication "outbox_relay" did not exist: skipped loading publication "outbox_relay"');
    // The session classifies what ends the stream: this one stays what it is.
    expect(classifyPgError(error, { slot: 'outbox_relay', republish: { publication: 'outbox_relay' }, what: 'the replication session' })).toBe(error);
  });

  it('a 55000 warning about another publication, one of the walsender\'s own naming a slot of the same name, or another warning: passed on to be logged, the stream goes on', async () => {
    const otherPublication = notice('55000', 'skipped loading publication "someone_elses"', 'The publication does not exist at this point in the WAL.', IN_PGOUTPUT);
    // PostgreSQL 17+ while a failover slot waits for a standby named in synchronized_standby_slots: no output plugin's context.
    const standbySlot = notice('55000', 'replication slot "outbox_relay" specified in parameter "synchronized_standby_slots" does not have active_pid', 'Logical replication is waiting on the standby associated with replication slot "outbox_relay".');
    const { error, keepalives, notices } = await stream(Buffer.concat([keepalive(0x100n), otherPublication, standbySlot, notice('01000', 'something to know', 'its detail'), keepalive(0x200n)]));
    expect(error).toBeUndefined();
    expect(keepalives).toEqual([0x100n, 0x200n]);
    expect(notices).toMatchObject([{ code: '55000' }, { code: '55000' }, { code: '01000', message: 'something to know', detail: 'its detail' }]);
  });
});

describe('the replication stream: a command PostgreSQL ends without being asked', () => {
  it('CopyDone, CommandComplete and ReadyForQuery the relay did not ask for end the stream with a retriable PG_STREAM_FAILED, not as an orderly end', async () => {
    // Taken for the end the relay's own close() asks for, it started the next session at once, without a line,
    // a backoff or retry.maxDuration: a server (or a proxy) that ended every command so had the relay loop.
    const ended = Buffer.concat([message('c', Buffer.alloc(0)), message('C', Buffer.from('COPY 0\0')), message('Z', Buffer.from('I'))]);
    const { error, keepalives } = await stream(Buffer.concat([keepalive(0x100n), ended]));
    expect(keepalives).toEqual([0x100n]);
    expect(error).toMatchObject({ code: 'PG_STREAM_FAILED', retriable: true });
    expect(error!.message).toBe('PostgreSQL ended the replication command without an error, unasked');
    expect(classifyPgError(error, { slot: 'outbox_relay', republish: { publication: 'outbox_relay' }, what: 'the replication session' })).toBe(error);
  });
});
