import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { classifyPgError } from '../../src/source/pg-errors.js';

/** An ErrorResponse as `pg` hands it over: message, SQLSTATE and context fields. */
function serverError(code: string, message: string, where?: string): Error {
  const err = new pg.DatabaseError(message, message.length, 'error');
  Object.assign(err, { severity: 'ERROR', code, where });
  return err;
}

describe('classifyPgError', () => {
  it('stops on pgoutput\'s "publication does not exist" while decoding (PostgreSQL 17 and older): the slot cannot stream past it, a reconnect meets it again', () => {
    // The publication was dropped and re-created while the slot existed: the WAL in between names none. Before,
    // PG_STREAM_FAILED, retriable: the relay reconnected for ever (each session's keepalive ended the outage).
    const where = 'slot "outbox_relay", output plugin "pgoutput", in the change callback, associated LSN 0/1A2B3C8';
    const error = classifyPgError(serverError('42704', 'publication "outbox_relay" does not exist', where), { slot: 'outbox_relay' });
    expect(error).toMatchObject({ code: 'PG_PUBLICATION_MISSING', retriable: false, details: { publication: 'outbox_relay', where } });
    expect(error.message).toBe('replication slot "outbox_relay" cannot stream past WAL written while publication "outbox_relay" did not exist: publication "outbox_relay" does not exist');
    expect(error.hint).toContain('outbox-relay slot drop');
    expect(error.hint).toContain('outbox-relay republish --since');
  });

  it('reports an invalidated slot as PG_SLOT_LOST in the wording of PostgreSQL 13 to 15 and of 16 and 17', () => {
    // 16 and 17 say it in CreateDecodingContext; before, that was PG_STREAM_FAILED, retriable, until the next
    // pre-flight found wal_status lost.
    for (const message of ['cannot read from logical replication slot "outbox_relay"', 'can no longer get changes from replication slot "outbox_relay"']) {
      const error = classifyPgError(serverError('55000', message), { slot: 'outbox_relay' });
      expect(error, message).toMatchObject({ code: 'PG_SLOT_LOST', retriable: false });
      expect(error.message, message).toContain(message);
    }
  });

  it('retries other undefined objects, such as a slot dropped between pre-flight and START_REPLICATION: the next pre-flight names it', () => {
    const error = classifyPgError(serverError('42704', 'replication slot "outbox_relay" does not exist'), { slot: 'outbox_relay' });
    expect(error).toMatchObject({ code: 'PG_STREAM_FAILED', retriable: true });
  });
});
