import { createHash } from 'node:crypto';

/**
 * The replication slot is the lock between relay instances only from START_REPLICATION on. Before that, each
 * instance checks the slot, then (exactly-once) registers the slot's transactional id and reads the checkpoint;
 * two standbys that check at the same moment both find it free, and the later registration fences the producer
 * of the one that goes on to stream. A session-level advisory lock, taken on the replication connection as soon
 * as the check found the slot free, closes that gap: the connection holds it through the stream, and PostgreSQL
 * releases it with the slot when the connection ends, a killed process's included. The key pair: this constant
 * (ASCII "obrx") and a hash of the slot name, both below 2^31, so pg_locks shows them as they are here (classid,
 * objid).
 */
export const SLOT_LOCK_CLASS = 0x6f627278;

export function slotLockKey(slot: string): number {
  return createHash('sha256').update(slot).digest().readUInt32BE(0) & 0x7fffffff;
}

/** The lock's row in pg_locks, in the current database (advisory locks are per database, like a logical slot). */
function lockRows(slot: string): string {
  return `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = ${SLOT_LOCK_CLASS} AND objid = ${slotLockKey(slot)}
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`;
}

/**
 * Takes the lock if it is free; `holder` is the pid of the connection holding it otherwise (null when that one let
 * go between the two reads: the standby's next poll finds the slot free). Literal SQL: the replication
 * connection speaks the simple query protocol only, and both keys are integers computed here.
 */
export function tryLockSql(slot: string): string {
  return `SELECT pg_try_advisory_lock(${SLOT_LOCK_CLASS}, ${slotLockKey(slot)}) AS locked, (${lockRows(slot)} AND pid <> pg_backend_pid() LIMIT 1) AS holder`;
}

/** The pid of a connection holding the slot's lock (`pid`; no row when none): a relay between its checks and streaming. */
export function lockHolderSql(slot: string): string {
  return `${lockRows(slot)} LIMIT 1`;
}

/** Whether another connection holds the slot or its lock (true/false in `held`): what a standby polls. */
export function slotHeldSql(slot: string): string {
  return `SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active) OR EXISTS (${lockRows(slot)}) AS held`;
}
