import { RelayError, type ErrorCode } from '../errors.js';
import { recreateSlot } from '../source/recreate-slot.js';
import type { RelayNames } from '../source/republish-command.js';

interface Refusal {
  code: ErrorCode;
  /** A function where the fix names the command's slot, publication and tables when it has them. */
  fix: string | ((names: RelayNames | undefined) => string);
}

/** What a standby's refusals have in common: the fix is the URL, not the server's settings. */
export const STANDBY_FIX = 'this server is a read-only standby: point --postgres-url at the primary';

/**
 * A standby refuses WAL functions (pg_current_wal_lsn()) with SQLSTATE 55000 "recovery is in progress" (55000
 * otherwise means wal_level), and a new logical slot before PostgreSQL 16 with 0A000 "logical decoding cannot be
 * used while in recovery".
 */
export const IN_RECOVERY = /recovery is in progress|while in recovery/i;

/**
 * The error of an operation a standby cannot serve, whoever found out: the server's refusal (pgRefusal) or the
 * operator command's own pg_is_in_recovery() before it changes anything (ops/primary.ts).
 */
export function standbyRefusal(message: string, cause?: unknown): RelayError {
  return new RelayError('PG_QUERY_FAILED', message, { cause, hint: STANDBY_FIX });
}

function refusedOnStandby(sqlstate: string | undefined, message: string): boolean {
  // read_only_sql_transaction: a write (CREATE or DROP PUBLICATION) in recovery.
  return sqlstate === '25006' || ((sqlstate === '55000' || sqlstate === '0A000') && IN_RECOVERY.test(message));
}

/**
 * PostgreSQL's refusals that operator commands meet, by SQLSTATE, each with the code the relay reports and what
 * fixes it. Anything else stays PG_QUERY_FAILED, with its SQLSTATE named so it can be looked up.
 */
const REFUSALS: Record<string, Refusal> = {
  // object_not_in_prerequisite_state: wal_level too low, or a slot whose WAL was removed (a standby's: IN_RECOVERY).
  '55000': { code: 'PG_WAL_LEVEL', fix: 'logical decoding needs wal_level = logical (ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL); if the message says the slot was invalidated, see docs/operations.md "Slot lost"' },
  // object_in_use
  '55006': { code: 'PG_SLOT_ACTIVE', fix: 'a running relay (or another client) holds the slot: stop it first; outbox-relay slot status shows who (held_by)' },
  // configuration_limit_exceeded: all slots or WAL senders in use
  '53400': { code: 'PG_QUERY_FAILED', fix: 'raise max_replication_slots / max_wal_senders (a restart), or drop unused slots: outbox-relay slot list shows them' },
  // undefined_object: no such slot or publication
  '42704': {
    code: 'PG_SLOT_MISSING',
    fix: (names) =>
      names
        ? `create it: ${recreateSlot('setup', null, names)} (it creates whichever of the two is missing); or check --slot and --publication`
        : 'create it: outbox-relay setup (or slot create / publication create); check --slot and --publication',
  },
  // undefined_table
  '42P01': { code: 'PG_QUERY_FAILED', fix: 'create the table first (sql/001_outbox_table.sql), or point --table (or tables:) at the existing one, schema-qualified; check the database in --postgres-url' },
  // duplicate_object: a publication or slot of that name (publication create, slot create)
  '42710': { code: 'PG_QUERY_FAILED', fix: 'the object already exists: use it (outbox-relay status shows the slot and the publication), or drop it first' },
  // wrong_object_type: a view, foreign table or system catalog named as the outbox
  '42809': { code: 'PG_QUERY_FAILED', fix: 'the outbox must be an ordinary or partitioned table (not a view, a foreign table or a system catalog): point --table at it' },
  // invalid_name
  '42602': { code: 'CONFIG_INVALID', fix: 'slot names are lower-case letters, digits and underscores, at most 63 characters' },
  // query_canceled: statement_timeout (postgres.statementTimeout) ran out
  '57014': {
    code: 'PG_QUERY_FAILED',
    fix: 'the statement ran longer than postgres.statementTimeout (--postgres-statement-timeout): a lock held by another session or a long open transaction held it up (pg_stat_activity: wait_event, xact_start; a new slot waits for every transaction open when it was asked for); end that, or raise the timeout',
  },
};

/**
 * The message of a refusal: the server's own, with its DETAIL when it gave one (`cause.detail`: why a slot was
 * invalidated, which object depends on another).
 */
export function refusedMessage(sqlstate: string | undefined, message: string, cause: unknown): string {
  const detail = (cause as { detail?: unknown } | undefined)?.detail;
  return `PostgreSQL refused the operation (SQLSTATE ${sqlstate ?? 'unknown'}): ${message}${typeof detail === 'string' && detail ? ` (${detail})` : ''}`;
}

/** The RelayError for a refusal with SQLSTATE `sqlstate`, or undefined when it has no entry. `names`: see opsError. */
export function pgRefusal(sqlstate: string | undefined, message: string, cause: unknown, names?: RelayNames): RelayError | undefined {
  const refused = refusedMessage(sqlstate, message, cause);
  if (refusedOnStandby(sqlstate, message)) return standbyRefusal(refused, cause);
  // 55000 also when max_replication_slots is 0 ("replication slots can only be used if max_replication_slots > 0"):
  // not wal_level, which may well be logical already.
  if (sqlstate === '55000' && /max_replication_slots/.test(message)) {
    return new RelayError('PG_QUERY_FAILED', refused, { cause, hint: 'ALTER SYSTEM SET max_replication_slots = <at least one per replication slot>; then restart PostgreSQL (managed services: change the parameter group); outbox-relay setup --dry-run checks it' });
  }
  const refusal = sqlstate === undefined ? undefined : REFUSALS[sqlstate];
  if (!refusal) return undefined;
  return new RelayError(refusal.code, refused, { cause, hint: typeof refusal.fix === 'function' ? refusal.fix(names) : refusal.fix });
}
