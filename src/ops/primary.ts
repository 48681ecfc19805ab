import type pg from 'pg';
import type { RelayError } from '../errors.js';
import type { Check } from './checks.js';
import { STANDBY_FIX, standbyRefusal } from './pg-refusals.js';

/**
 * Whether the server is a standby (in recovery). From PostgreSQL 16 on a standby accepts
 * pg_create_logical_replication_slot: a command that left the refusal to the server created the slot there, one
 * the relay cannot stream from (pg_current_wal_lsn() is refused in recovery) and which pins the standby's WAL
 * (and, with hot_standby_feedback, the primary's catalog_xmin). So every command that creates or changes
 * anything asks first.
 */
export async function inRecovery(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ in_recovery: boolean }>('SELECT pg_is_in_recovery() AS in_recovery');
  return rows[0]!.in_recovery;
}

const STANDBY = 'this PostgreSQL is a standby (in recovery: pg_is_in_recovery() is true)';

/** What `command` reports on a standby, refused before it created or changed anything. */
export function standbyError(command: string): RelayError {
  return standbyRefusal(`outbox-relay ${command} refused: ${STANDBY}; nothing was created or changed`);
}

/** Refuses at once on a standby, with the fix of the server's own standby refusals. */
export async function requirePrimary(client: pg.Client, command: string): Promise<void> {
  if (await inRecovery(client)) throw standbyError(command);
}

/** The same as one of setup's checks, which --dry-run reports. */
export function primaryCheck(standby: boolean): Check {
  return standby
    ? { name: 'primary', ok: false, detail: `${STANDBY}: the slot and the publication are created on the primary`, fix: STANDBY_FIX }
    : { name: 'primary', ok: true, detail: 'not in recovery' };
}
