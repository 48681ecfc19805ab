import type pg from 'pg';
import { RelayError } from '../errors.js';
import { quoteLiteral } from '../sql/quote.js';
import type { RelayNames, RepublishScope } from '../source/republish-command.js';
import { recreateSlot, slotFlag } from '../source/recreate-slot.js';
import { INVALIDATION_REASON_SQL, slotLostError } from '../source/slot-lost.js';
import { lockHolderSql } from '../source/slot-lock.js';

/** One row of pg_replication_slots, with the lag measured against the current WAL position. */
export interface SlotStatus {
  name: string;
  slotType: string;
  plugin: string | null;
  database: string | null;
  inCurrentDatabase: boolean;
  active: boolean;
  activePid: number | null;
  /** application_name of the connection holding the slot: an outbox-relay names its host (pod) and slot there. */
  heldBy: string | null;
  confirmedFlushLsn: string | null;
  restartLsn: string | null;
  walStatus: string | null;
  /** Why PostgreSQL invalidated the slot (source/slot-lost.ts, InvalidationReason); null unless wal_status is 'lost'. */
  invalidationReason: string | null;
  /**
   * Bytes of WAL that may still be written before the slot is invalidated. null when unlimited
   * (max_slot_wal_keep_size = -1), but also when the slot is lost or reserves no WAL (wal_status 'lost' or null).
   */
  safeWalSize: number | null;
  /** pg_current_wal_lsn() - confirmed_flush_lsn: WAL the relay has not confirmed yet (on a standby, from its replay position). */
  lagBytes: number | null;
  /** PostgreSQL 17+: synced to standbys that sync slots (a failover slot); null on older servers, which have none. */
  failover: boolean | null;
  /** PostgreSQL 17+, true on a standby only: a copy kept in sync with the primary's failover slot. */
  synced: boolean | null;
}

interface SlotRow {
  slot_name: string;
  slot_type: string;
  plugin: string | null;
  database: string | null;
  in_current_db: boolean;
  active: boolean;
  active_pid: number | null;
  held_by: string | null;
  confirmed_flush_lsn: string | null;
  restart_lsn: string | null;
  wal_status: string | null;
  invalidation_reason: string | null;
  safe_wal_size: string | null;
  lag_bytes: string | null;
  failover: boolean | null;
  synced: boolean | null;
}

/** WAL the slot has not confirmed: what `slot status` shows as lag and the relay's outbox_relay_slot_lag_bytes. */
const LAG_BYTES = '(pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag_bytes';

/** PostgreSQL 17 added failover slots: the server_version_num from which `failover` can be asked for. */
export const FAILOVER_SLOTS_SINCE = 170000;

// Sizes arrive as text (bigint, numeric) and become numbers: exact up to 8 PiB, far beyond any WAL backlog.
// failover and synced through to_jsonb: the columns exist from PostgreSQL 17 on, and are null before it. On a
// standby (where `synced` is worth reading) the lag is measured from its replay position: pg_current_wal_lsn()
// refuses there.
const SLOT_QUERY = `
  SELECT slot_name, slot_type, plugin, database, database IS NOT DISTINCT FROM current_database() AS in_current_db,
         active, active_pid, (SELECT application_name FROM pg_stat_activity a WHERE a.pid = active_pid) AS held_by, confirmed_flush_lsn::text, restart_lsn::text, wal_status, ${INVALIDATION_REASON_SQL}, safe_wal_size::text,
         ((CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END) - confirmed_flush_lsn)::text AS lag_bytes,
         (to_jsonb(s) ->> 'failover')::boolean AS failover, (to_jsonb(s) ->> 'synced')::boolean AS synced
    FROM pg_replication_slots s`;

/** One slot's lag_bytes and the WAL position it is measured against ($1: its name). */
export const findSlotLagSql = `SELECT pg_current_wal_lsn()::text AS wal_end, ${LAG_BYTES} FROM pg_replication_slots WHERE slot_name = $1`;

function toStatus(row: SlotRow): SlotStatus {
  const bytes = (v: string | null) => (v === null ? null : Number(v));
  return {
    name: row.slot_name,
    slotType: row.slot_type,
    plugin: row.plugin,
    database: row.database,
    inCurrentDatabase: row.in_current_db,
    active: row.active,
    activePid: row.active_pid,
    heldBy: row.held_by,
    confirmedFlushLsn: row.confirmed_flush_lsn,
    restartLsn: row.restart_lsn,
    walStatus: row.wal_status,
    invalidationReason: row.invalidation_reason,
    safeWalSize: bytes(row.safe_wal_size),
    lagBytes: bytes(row.lag_bytes),
    failover: row.failover,
    synced: row.synced,
  };
}

export async function listSlots(client: pg.Client): Promise<SlotStatus[]> {
  const { rows } = await client.query<SlotRow>(`${SLOT_QUERY} ORDER BY slot_name`);
  return rows.map(toStatus);
}

export async function findSlot(client: pg.Client, name: string): Promise<SlotStatus | undefined> {
  const { rows } = await client.query<SlotRow>(`${SLOT_QUERY} WHERE slot_name = $1`, [name]);
  return rows[0] ? toStatus(rows[0]) : undefined;
}

/** `failover`: a PostgreSQL 17 failover slot, which standbys with sync_replication_slots keep a usable copy of. */
export function createSlotSql(name: string, failover = false): string {
  return `SELECT pg_create_logical_replication_slot(${quoteLiteral(name)}, 'pgoutput'${failover ? ', failover => true' : ''});`;
}

/**
 * The statement a fix prints to make the slot again. `failover`: whether it is to be a failover slot; undefined when
 * not known (a slot gone, on a server that has failover slots), which prints both, as recreateSlot names the flag.
 */
export function recreateSlotSql(name: string, failover: boolean | null | undefined): string {
  if (failover === undefined) return `${createSlotSql(name)} (or, if it was a failover slot: ${createSlotSql(name, true)})`;
  return createSlotSql(name, failover === true);
}

/** --failover-slot on a server before 17: it has no such slots, and a plain one would not survive a failover. */
export function failoverUnsupported(version: string): RelayError {
  return new RelayError('OPERATION_REFUSED', `not created: PostgreSQL ${version} has no failover slots (PostgreSQL 17 or later)`, {
    hint: 'leave out --failover-slot: before 17 a logical slot exists on the primary only, and a failover needs the steps in docs/operations.md "PostgreSQL primary failover"',
  });
}

/**
 * --failover-slot, but the slot exists without it: it would not survive a failover. PostgreSQL 17 can turn it
 * into one in place, keeping its position (no gap, unlike a drop and a new slot).
 */
export function notFailoverSlot(name: string): RelayError {
  return new RelayError('OPERATION_REFUSED', `replication slot "${name}" exists, but is not a failover slot: standbys do not sync it, and a failover loses it`, {
    hint: `make it one, keeping its position, with the relay stopped (on a replication connection): psql "dbname=<database> replication=database" -c 'ALTER_REPLICATION_SLOT ${name} (FAILOVER true)'`,
  });
}

/** The server's version (server_version) when it has no failover slots, else undefined. */
export async function failoverSlotsMissing(client: pg.Client): Promise<string | undefined> {
  const { rows } = await client.query<{ num: number; version: string }>("SELECT current_setting('server_version_num')::int AS num, split_part(current_setting('server_version'), ' ', 1) AS version");
  return rows[0]!.num < FAILOVER_SLOTS_SINCE ? rows[0]!.version : undefined;
}

/** A logical slot can only be used, advanced or dropped from the database it was created in. */
export function wrongDatabase(slot: SlotStatus): RelayError | undefined {
  if (slot.slotType !== 'logical' || slot.inCurrentDatabase) return undefined;
  return new RelayError('PG_SLOT_WRONG_DATABASE', `replication slot "${slot.name}" belongs to database "${slot.database}", not to the one connected to`, {
    hint: `connect to database ${slot.database} (--postgres-url), or use another --slot name`,
  });
}

/**
 * PG_SLOT_WRONG_PLUGIN, from the relay's pre-flight and from the commands that check the slot (setup, slot create,
 * slot advance). A slot's type and plugin never change, and setup and slot create keep an existing slot of the name
 * (refusing this one), so only another name, or a drop and then setup, gives the relay a pgoutput slot. `names`: the
 * relay's slot, publication and tables, printed in both commands (pasted elsewhere, they would act on the defaults).
 */
export function wrongPluginError(slotType: string, plugin: string | null, names: RelayNames): RelayError {
  return new RelayError('PG_SLOT_WRONG_PLUGIN', `replication slot "${names.slot}" is a ${slotType} slot with plugin ${plugin ?? 'none'}; the relay needs a logical slot with pgoutput`, {
    hint: `use another --slot name (it may be another tool's slot, or a standby's), or, if it is the relay's, drop it and make it again with pgoutput: outbox-relay slot drop${slotFlag(names.slot)}, then ${recreateSlot('setup', null, names)}`,
  });
}

/** Why an existing slot cannot serve the relay, or undefined when it can. `republish`: named in the fixes. */
export function slotProblem(slot: SlotStatus, republish: RepublishScope): RelayError | undefined {
  if (slot.slotType !== 'logical' || slot.plugin !== 'pgoutput') return wrongPluginError(slot.slotType, slot.plugin, { slot: slot.name, ...republish });
  if (slot.walStatus === 'lost') return slotLostError(slot.name, republish, slot.invalidationReason, undefined, slot.failover);
  return wrongDatabase(slot);
}

/**
 * The pid of the connection using the slot, or null: the one streaming from it, else one holding its lock, a
 * relay that does not stream yet (its start: the checks, the exactly-once checkpoint read).
 */
export async function slotUser(client: pg.Client, slot: SlotStatus): Promise<number | null> {
  if (slot.activePid !== null) return slot.activePid;
  const { rows } = await client.query<{ pid: number }>(lockHolderSql(slot.name));
  return rows[0]?.pid ?? null;
}

/** The slot `names.slot`; missing, the fix names the relay's slot, publication and tables (recreateSlot). */
export async function requireSlot(client: pg.Client, names: RelayNames): Promise<SlotStatus> {
  const slot = await findSlot(client, names.slot);
  if (!slot) {
    throw new RelayError('PG_SLOT_MISSING', `replication slot "${names.slot}" does not exist`, {
      hint: `check --slot, or create it: ${recreateSlot('slot create', undefined, names)} (or ${recreateSlot('setup', null, names)}, which creates the publication first when it is missing)`,
    });
  }
  return slot;
}

/**
 * Idempotent: an existing slot is fine when it is a pgoutput slot of this database (and a failover slot, when
 * `failover` asks for one). A new one needs its publication first: pgoutput reads the publication with the
 * catalog as of each change, so a slot created before it never streams the rows written in between. `republish`:
 * the publication, and the tables a lost slot's fix names.
 */
export async function createSlot(client: pg.Client, name: string, republish: RepublishScope, failover = false): Promise<{ created: boolean; slot: SlotStatus }> {
  const { publication } = republish;
  const tooOld = failover ? await failoverSlotsMissing(client) : undefined;
  if (tooOld !== undefined) throw failoverUnsupported(tooOld);
  const existing = await findSlot(client, name);
  if (existing) return { created: false, slot: usableSlot(existing, republish, failover) };
  const { rows } = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]);
  if (rows.length === 0) {
    throw new RelayError('PG_PUBLICATION_MISSING', `not created: publication "${publication}" does not exist, and a slot created before its publication never streams the rows written in between`, {
      hint: `create the publication first (outbox-relay publication create, or outbox-relay setup, which creates both in that order), or name yours with --publication`,
    });
  }
  try {
    await client.query(createSlotSql(name, failover));
  } catch (err) {
    // duplicate_object: another session (a second replica's setup, run at the same time) created it since the
    // read above. Judged as one found there, it is as good as this one.
    const raced = (err as { code?: string }).code === '42710' ? await findSlot(client, name) : undefined;
    if (raced) return { created: false, slot: usableSlot(raced, republish, failover) };
    throw err;
  }
  return { created: true, slot: await requireSlot(client, { slot: name, ...republish }) };
}

/** An existing slot the relay can use, or the reason it cannot. */
function usableSlot(existing: SlotStatus, republish: RepublishScope, failover: boolean): SlotStatus {
  const problem = slotProblem(existing, republish);
  if (problem) throw problem;
  if (failover && existing.failover === false) throw notFailoverSlot(existing.name);
  return existing;
}
