import { RelayError } from '../errors.js';
import { parseLsn, type Lsn } from '../lsn.js';
import type { TableMapping } from '../config/types.js';
import { quoteLiteral } from '../sql/quote.js';
import type { ReplicationStream } from './replication-stream.js';
import { tryLockSql } from './slot-lock.js';
import { createPublicationSql } from '../ops/publication-sql.js';
import { FAILOVER_SLOTS_SINCE, recreateSlotSql, wrongPluginError } from '../ops/slots.js';
import { recreateSlot } from './recreate-slot.js';
import { publishedTables, readPublication, type CatalogQuery } from './publication-check.js';
import { INVALIDATION_REASON_SQL, slotLostError } from './slot-lost.js';
import { unsentColumns, type UnsentColumn } from './sent-columns.js';
import { readTimelineHistory, type TimelineHistory } from './timeline.js';
import { SeenPublication } from './seen-publication.js';
import { newSlotThenRepublish } from './publication-dropped.js';
import { createAsItWas, knownPublication, seenPublicationSql } from './publication-as-it-was.js';
import type { RepublishScope } from './republish-command.js';

export interface SlotState {
  confirmedFlush: Lsn;
  walStatus: string | null;
  /**
   * The mapped tables by OID, which a rename keeps: WAL written before a rename is decoded under the old name, so a
   * mapping found by name alone would pass over those rows once the setting names the new one.
   */
  tablesByOid: Map<number, TableMapping>;
  /** pg_current_wal_lsn() when the session opened: no position this server confirmed lies beyond it. */
  walEnd: Lsn;
  /** This walsender's wal_sender_timeout in ms (0: none): the longest it waits for a status update. */
  walSenderTimeoutMs: number;
  /** server_encoding is SQL_ASCII: text comes as stored, UTF-8 or not (RowMapperOptions.utf8Unchecked). */
  utf8Unchecked: boolean;
  /**
   * pg_replication_slots.synced (PostgreSQL 17+): the slot is a copy synced from a primary (a failover slot), which a
   * promoted standby keeps, with the old primary's position; false where the slot was made on this server.
   */
  synced: boolean;
  /** Which positions of earlier timelines are in this server's WAL (a position to resume at is checked against it). */
  history: TimelineHistory;
  /**
   * Mapped columns pgoutput will not send as the catalog is now (missing, generated, left out by a column list): the
   * first row written so halts the relay (SCHEMA_COLUMN_MISSING). Said at the start, not refused: the rows written
   * before the change are decoded as the catalog was then, and are delivered first.
   */
  unsentColumns: UnsentColumn[];
}

interface SlotRow {
  plugin: string | null;
  slot_type: string;
  database: string | null;
  current_db: string;
  active: boolean;
  active_pid: number | null;
  confirmed_flush_lsn: string | null;
  wal_status: string | null;
  invalidation_reason: string | null;
  failover: boolean | null;
  synced: boolean | null;
}

/** What the pre-flight needs of the replication connection: its queries (a fake answers them in unit tests). */
export type PreflightQueries = Pick<ReplicationStream, 'query'>;

/**
 * Checks, on the replication connection itself, everything that would otherwise fail later with an obscure
 * message, and says how to fix each. Returns the slot's confirmed position. `scope`: the relay's publication, and its
 * tables as a republish names them. `seen`: the relay's (SeenPublication).
 */
export async function preflight(stream: PreflightQueries, slot: string, scope: RepublishScope, tables: TableMapping[], seen = new SeenPublication()): Promise<SlotState> {
  const { publication } = scope;
  // Named in each printed setup and slot command: pasted in another shell, they would act on the default slot and publication, and setup build the publication from the default table.
  const names = { slot, ...scope };
  // Named in the fixes that create the publication again (as it was).
  const known = knownPublication(publication, tables, seen);
  const [walLevel] = await stream.query<{ wal_level: string }>('SHOW wal_level');
  // pg_settings on this connection: the walsender's own value, with the URL's startup options applied.
  const [wal] = await stream.query<{ lsn: string; wal_sender_timeout_ms: string; server_encoding: string; version_num: number }>(
    `SELECT pg_current_wal_lsn()::text AS lsn, (SELECT setting FROM pg_settings WHERE name = 'wal_sender_timeout') AS wal_sender_timeout_ms, current_setting('server_encoding') AS server_encoding,
            current_setting('server_version_num')::int AS version_num`,
  );
  if (walLevel?.wal_level !== 'logical') {
    throw new RelayError('PG_WAL_LEVEL', `wal_level is "${walLevel?.wal_level}", logical replication needs "logical"`, {
      hint: 'run ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL (on managed services: the logical replication / logical decoding parameter)',
    });
  }
  const [row] = await stream.query<SlotRow>(
    `SELECT plugin, slot_type, database, current_database() AS current_db, active, active_pid, confirmed_flush_lsn::text, wal_status,
            ${INVALIDATION_REASON_SQL},
            (to_jsonb(s) ->> 'failover')::boolean AS failover, (to_jsonb(s) ->> 'synced')::boolean AS synced
       FROM pg_replication_slots s WHERE slot_name = ${quoteLiteral(slot)}`,
  );
  const query: CatalogQuery = (sql) => stream.query(sql);
  const pub = await readPublication(query, publication);
  const createPublication = createPublicationSql(publication, tables);
  if (!row) {
    // Whether the slot was a failover slot is gone with it, and setup and slot create take --failover-slot from their
    // command line only: on a server that has failover slots, the fix names the flag and both statements. Before 17
    // there are none (and setup refuses the flag).
    const failover = wal !== undefined && wal.version_num < FAILOVER_SLOTS_SINCE ? null : undefined;
    // The publication before the slot: a slot created first never streams the rows written before the publication.
    const createSlot = recreateSlotSql(slot, failover);
    // Both gone after this process saw the publication: as it was, as for a dropped publication (newSlotThenRepublish).
    const seenSql = pub ? undefined : seenPublicationSql(publication, known);
    throw new RelayError('PG_SLOT_MISSING', `replication slot "${slot}" does not exist${pub ? '' : `, nor does publication "${publication}"`}`, {
      hint: pub
        ? `run ${recreateSlot('setup', failover, names)}, or ${createSlot}`
        : seenSql
          ? createAsItWas(seenSql, failover, names, createSlot)
          : `run ${recreateSlot('setup', failover, names)}, which creates the publication, then the slot; or, in that order: ${createPublication}  ${createSlot}`,
      // With a checkpoint the relay replaces this fix (missingSlotDelivered), which must create the publication too.
      ...(!pub && { details: { publicationMissing: true } }),
    });
  }
  if (row.slot_type !== 'logical' || row.plugin !== 'pgoutput') throw wrongPluginError(row.slot_type, row.plugin, names);
  if (row.database !== row.current_db) {
    throw new RelayError('PG_SLOT_WRONG_DATABASE', `replication slot "${slot}" belongs to database "${row.database}", but the relay is connected to "${row.current_db}"`, {
      hint: `connect to ${row.database} or create a slot in ${row.current_db}`,
    });
  }
  // The slot's position goes along (slotConfirmedLsn): /readyz and the halt line name it where no session of the relay reported one.
  const position = { slotConfirmedLsn: row.confirmed_flush_lsn };
  if (row.wal_status === 'lost') throw slotLostError(slot, scope, row.invalidation_reason, undefined, row.failover).withDetails(position);
  if (row.active) {
    throw new RelayError('PG_SLOT_ACTIVE', `replication slot "${slot}" is in use by another connection (pid ${row.active_pid})`, {
      retriable: true,
      hint: 'another relay instance is streaming; this one waits as a standby and takes over when the slot is released',
      details: { activePid: row.active_pid, ...position },
    });
  }
  // The slot is free, but another instance may be between this check and START_REPLICATION (slot-lock.ts).
  const [lock] = await stream.query<{ locked: boolean; holder: number | null }>(tryLockSql(slot));
  if (!lock?.locked) {
    throw new RelayError('PG_SLOT_ACTIVE', `replication slot "${slot}" is being taken by another relay instance (${lock?.holder ? `pid ${lock.holder}` : 'which has let go since'})`, {
      retriable: true,
      hint: 'another relay instance is starting to stream from the slot; this one waits as a standby and takes over when the slot is released',
      details: { activePid: lock?.holder ?? null, ...position },
    });
  }
  if (!pub) {
    // Created now, the publication would come after the slot, which never streams the rows written before it
    // (dropped while the slot was in use: the rows written since): only a new slot, then republish, gets them.
    throw new RelayError('PG_PUBLICATION_MISSING', `publication "${publication}" does not exist, but slot "${slot}" does: the slot cannot stream the rows written while the publication did not exist`, {
      hint: newSlotThenRepublish(row.failover, names, known),
    });
  }
  const tablesByOid = await publishedTables(query, scope, pub, tables, seen);
  const unsent: UnsentColumn[] = [];
  for (const t of tables) unsent.push(...(await unsentColumns(query, t, publication)));
  const utf8Unchecked = wal!.server_encoding === 'SQL_ASCII';
  // With client_encoding UTF8 (pg-connect.ts), a SQL_ASCII server checks each value it sends against UTF-8: one row
  // that is not ended the session at the same WAL on every reconnect ("invalid byte sequence for encoding UTF8"),
  // no event named, until retry.maxDuration. Sent as stored instead, such a value is the row mapper's to refuse,
  // naming the event and the column, under the poison policy (RowMapperOptions.utf8Unchecked).
  if (utf8Unchecked) await stream.query("SET client_encoding = 'SQL_ASCII'");
  const history = await readTimelineHistory(stream);
  return { confirmedFlush: row.confirmed_flush_lsn ? parseLsn(row.confirmed_flush_lsn) : 0n, walStatus: row.wal_status, synced: row.synced === true, tablesByOid, walEnd: parseLsn(wal!.lsn), walSenderTimeoutMs: Number(wal!.wal_sender_timeout_ms), utf8Unchecked, history, unsentColumns: unsent };
}
