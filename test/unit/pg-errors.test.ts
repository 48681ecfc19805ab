import pg from 'pg';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { slotBounds } from '../../src/checkpoint/start-position.js';
import { classifyPgError, skippedPublicationError } from '../../src/source/pg-errors.js';
import { SeenPublication } from '../../src/source/seen-publication.js';
import { STANDBY_FIX } from '../../src/ops/pg-refusals.js';
import { StandbyWait } from '../../src/source/standby-wait.js';
import { republishScope } from '../../src/source/republish-command.js';
import { load } from '../support/config-load.js';
import { closeFakePgServers, fakePgServer } from '../support/fake-pg-server.js';
import { printedSettings } from '../support/printed-command.js';

const SESSION = { slot: 'outbox_relay', republish: { publication: 'outbox_relay' }, what: 'the replication session' };

/** An ErrorResponse as `pg` hands it over: message, SQLSTATE and context fields. */
function serverError(code: string, message: string, where?: string): Error {
  const err = new pg.DatabaseError(message, message.length, 'error');
  Object.assign(err, { severity: 'ERROR', code, where });
  return err;
}

describe('classifyPgError', () => {
  it("a role without REPLICATION: the printed ALTER ROLE and GRANT quote the role's name, which PostgreSQL otherwise folds to lower case", () => {
    const refused = classifyPgError(serverError('42501', 'permission denied to start WAL sender'), { ...SESSION, user: 'Relay-Role' });
    expect(refused.code).toBe('PG_NO_REPLICATION_PRIVILEGE');
    expect(refused.hint).toMatch(/^ALTER ROLE "Relay-Role" WITH REPLICATION;  \(on Amazon RDS \/ Aurora: GRANT rds_replication TO "Relay-Role";\)/);
  });

  it('stops on a connection pg itself refuses for its configuration (no password given, a server without TLS), with the fix: the next attempt fails the same way', () => {
    // Before: PG_STREAM_FAILED, retried as a PostgreSQL outage for retry.maxDuration (30 min by default), then
    // RETRIES_EXHAUSTED with "check that PostgreSQL is up and reachable".
    const noPassword = classifyPgError(new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string'), SESSION);
    expect(noPassword).toMatchObject({ code: 'PG_CONNECT_FAILED', retriable: false });
    expect(noPassword.hint).toMatch(/^PostgreSQL asks this role for a password and none was given: put it in postgres.url, or set postgres.passwordFile .* or PGPASSWORD$/);
    const noTls = classifyPgError(new Error('The server does not support SSL connections'), SESSION);
    expect(noTls).toMatchObject({ code: 'PG_CONNECT_FAILED', retriable: false });
    expect(noTls.hint).toMatch(/^this server does not offer TLS: enable ssl on it, or set postgres.sslmode .* prefer or disable/);
  });

  it('stops on a server certificate node did not accept, with the fix for it: it is not accepted the next time either', () => {
    // Node's error as pg hands it over (its code is OpenSSL's verify result). Before, PG_STREAM_FAILED: retried
    // as an outage, then RETRIES_EXHAUSTED with "check that PostgreSQL is up". ops.pg-tls measures the CA and host name ones.
    const tlsError = (code: string, message: string) => Object.assign(new Error(message), { code });
    const expired = classifyPgError(tlsError('CERT_HAS_EXPIRED', 'certificate has expired'), SESSION);
    expect(expired).toMatchObject({ code: 'PG_CONNECT_FAILED', retriable: false, message: 'TLS to PostgreSQL for the replication session failed: certificate has expired' });
    expect(expired.hint).toMatch(/^the server's certificate is outside its validity period: renew it/);
    const selfSigned = classifyPgError(tlsError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'), SESSION);
    expect(selfSigned).toMatchObject({ code: 'PG_CONNECT_FAILED', retriable: false });
    expect(selfSigned.hint).toContain('postgres.sslCaFile (--postgres-ssl-ca-file / OUTBOX_RELAY_POSTGRES_SSL_CA_FILE)');
  });

  it('stops on pgoutput\'s "publication does not exist" while decoding (PostgreSQL 17 and older): the slot cannot stream past it, a reconnect meets it again', () => {
    // The publication was dropped and re-created while the slot existed: the WAL in between names none. Before,
    // PG_STREAM_FAILED, retriable: the relay reconnected for ever (each session's keepalive ended the outage).
    const where = 'slot "outbox_relay", output plugin "pgoutput", in the change callback, associated LSN 0/1A2B3C8';
    const error = classifyPgError(serverError('42704', 'publication "outbox_relay" does not exist', where), SESSION);
    expect(error).toMatchObject({ code: 'PG_PUBLICATION_MISSING', retriable: false, details: { publication: 'outbox_relay', where } });
    expect(error.message).toBe('replication slot "outbox_relay" cannot stream past WAL written while publication "outbox_relay" did not exist: publication "outbox_relay" does not exist');
    expect(error.hint).toContain('outbox-relay republish --since <that time> --publication outbox_relay');
    // Pasted where the environment names another relay's slot, publication and table, its slot drop and setup still name the relay's.
    const relay = load({ slot: 'billing_relay', publication: 'billing_pub', table: 'billing.outbox' });
    const billing = classifyPgError(serverError('42704', 'publication "billing_pub" does not exist', where), { ...SESSION, slot: relay.slot, republish: republishScope(relay) });
    const elsewhere = { OUTBOX_RELAY_SLOT: 'other_slot', OUTBOX_RELAY_PUBLICATION: 'other_pub', OUTBOX_RELAY_TABLE: 'public.outbox' };
    expect(load(printedSettings(billing.hint!, 'slot drop')[0]!, elsewhere).slot).toBe('billing_relay');
    const setup = load(printedSettings(billing.hint!, 'setup')[0]!, elsewhere);
    expect([setup.slot, setup.publication]).toEqual(['billing_relay', 'billing_pub']);
    expect(setup.tables).toEqual(relay.tables);
  });

  it("a publication found gone by the stream (PostgreSQL 17's error, 18's warning) is to be created again with the column lists and row filters the relay last saw on it, as the pre-flight and the watch say", () => {
    const seen = new SeenPublication();
    seen.saw({ schema: 'public', table: 'outbox' }, { columns: ['id', 'payload'], rowFilter: "(tenant = 'a'::text)" });
    const known = { publication: 'outbox_relay', tables: [{ schema: 'public', table: 'outbox' }], seen };
    const create = `CREATE PUBLICATION "outbox_relay" FOR TABLE "public"."outbox" ("id", "payload") WHERE ((tenant = 'a'::text)) WITH (publish = 'insert', publish_via_partition_root = true);  then run outbox-relay setup`;
    const where = 'slot "outbox_relay", output plugin "pgoutput", in the change callback, associated LSN 0/1A2B3C8';
    expect(classifyPgError(serverError('42704', 'publication "outbox_relay" does not exist', where), { ...SESSION, known }).hint).toContain(create);
    const warned = skippedPublicationError({ code: '55000', message: 'skipped loading publication "outbox_relay"', where }, 'outbox_relay', { publication: 'outbox_relay' }, known);
    expect(warned?.hint).toContain(create);
    // Another publication than the relay's: nothing known of it.
    expect(classifyPgError(serverError('42704', 'publication "other" does not exist', where), { ...SESSION, known }).hint).not.toContain('CREATE PUBLICATION');
  });

  it('reports an invalidated slot as PG_SLOT_LOST in the wording of PostgreSQL 13 to 15, of 16 and 17, and of 18', () => {
    // 16 and 17 say it in CreateDecodingContext, 18 in ReplicationSlotAcquire (read from each release's binary);
    // before, that was PG_STREAM_FAILED, retriable, until the next pre-flight found wal_status lost.
    for (const message of ['cannot read from logical replication slot "outbox_relay"', 'can no longer get changes from replication slot "outbox_relay"', 'can no longer access replication slot "outbox_relay"']) {
      const error = classifyPgError(serverError('55000', message), SESSION);
      expect(error, message).toMatchObject({ code: 'PG_SLOT_LOST', retriable: false });
      expect(error.message, message).toContain(message);
    }
  });

  it("a refused START_REPLICATION names the cause the server's detail gives (18 quotes invalidation_reason; 16 and 17 describe it), not always max_slot_wal_keep_size", () => {
    // Before: every one blamed max_slot_wal_keep_size; an idle_timeout slot on 18 too.
    const cases: [string, string, string | null, RegExp][] = [
      ['can no longer access replication slot "outbox_relay"', 'This replication slot has been invalidated due to "idle_timeout".', 'idle_timeout', /idle_replication_slot_timeout/],
      ['can no longer get changes from replication slot "outbox_relay"', 'This slot has been invalidated because it exceeded the maximum reserved size.', 'wal_removed', /max_slot_wal_keep_size/],
      ['can no longer get changes from replication slot "outbox_relay"', 'This slot has been invalidated because it was conflicting with recovery.', 'conflicting', /hot_standby_feedback/],
      ['cannot read from logical replication slot "outbox_relay"', '', null, /slot status shows why/],
    ];
    for (const [message, detail, reason, avoid] of cases) {
      const err = serverError('55000', message);
      if (detail) Object.assign(err, { detail });
      const error = classifyPgError(err, SESSION);
      expect(error, detail).toMatchObject({ code: 'PG_SLOT_LOST', details: { invalidationReason: reason } });
      expect(error.message, detail).toContain(detail ? `${message} (${detail})` : message);
      expect(error.hint, detail).toMatch(avoid);
    }
  });

  it("names a standby's 55000 (the pre-flight's pg_current_wal_lsn(): recovery is in progress) as a standby, with the primary as its fix", () => {
    // Before: "PostgreSQL connection for the replication session failed: recovery is in progress", no fix.
    const error = classifyPgError(serverError('55000', 'recovery is in progress'), SESSION);
    expect(error).toMatchObject({ code: 'PG_STREAM_FAILED', retriable: true });
    expect(error.message).toBe('PostgreSQL for the replication session is a standby (in recovery), not the primary: recovery is in progress');
    expect(error.hint).toMatch(/standby: point --postgres-url at the primary/);
  });

  it('retries other undefined objects, such as a slot dropped between pre-flight and START_REPLICATION: the next pre-flight names it', () => {
    const error = classifyPgError(serverError('42704', 'replication slot "outbox_relay" does not exist'), SESSION);
    expect(error).toMatchObject({ code: 'PG_STREAM_FAILED', retriable: true });
  });
});

describe('PostgreSQL errors name the connection they happened on', () => {
  afterEach(closeFakePgServers);

  it('a lost connection, retried, names what the connection was for', () => {
    // Before, every one read "PostgreSQL replication connection failed", a standby's poll and the start-position read too.
    const error = classifyPgError(new Error('Connection terminated unexpectedly'), { slot: 'outbox_relay', republish: { publication: 'outbox_relay' }, what: "the standby's check whether the slot is held" });
    expect(error).toMatchObject({ code: 'PG_STREAM_FAILED', retriable: true });
    expect(error.message).toBe("PostgreSQL connection for the standby's check whether the slot is held failed: Connection terminated unexpectedly");
  });

  it("slotBounds: a server that drops the connection under the start-position read is a retriable failure of that read, not of the replication connection", async () => {
    const error = await slotBounds(await fakePgServer('closes'), 'outbox_relay', { publication: 'outbox_relay' }).catch((err: unknown) => err);
    expect(error).toMatchObject({
      code: 'PG_STREAM_FAILED',
      retriable: true,
      message: "PostgreSQL connection for the read of the slot's position (where to start) failed: Connection terminated unexpectedly",
    });
  });

  it('slotBounds: a standby (55000 "recovery is in progress") is a retriable failure naming the standby and the fix, as the pre-flight beside it', async () => {
    const error = await slotBounds(await fakePgServer('standby'), 'outbox_relay', { publication: 'outbox_relay' }).catch((err: unknown) => err);
    // Before: PG_QUERY_FAILED, not retriable: at-least-once's first start ended at once (exit 1) where a failover's
    // standby is worth the retries the replication connection gets.
    expect(error).toMatchObject({ code: 'PG_STREAM_FAILED', retriable: true, hint: STANDBY_FIX });
    expect((error as Error).message).toBe("PostgreSQL for the read of the slot's position (where to start) is a standby (in recovery), not the primary: recovery is in progress");
  });

  it("StandbyWait: a refused login ends the wait naming the standby's poll, with a pg_hba.conf fix right for an ordinary connection", async () => {
    const retry = { initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 60_000, recordMaxAttempts: 1, recordMaxDurationMs: 0 };
    const wait = new StandbyWait(await fakePgServer('refuses'), 'outbox_relay', { publication: 'outbox_relay' }, retry, pino({ level: 'silent' }));
    const error = await wait.untilReleased(new AbortController().signal).catch((err: unknown) => err);
    expect(error).toMatchObject({
      code: 'PG_CONNECT_FAILED',
      retriable: false,
      message: 'PostgreSQL refused the connection for the standby\'s check whether the slot is held: password authentication failed for user "relay"',
      hint: expect.stringContaining("pg_hba.conf: a line for the database must let the relay's role in"),
    });
  });
});
