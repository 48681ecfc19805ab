import type pg from 'pg';
import { ConfigError } from '../config/load.js';
import type { TableMapping } from '../config/types.js';
import { RelayError, errorMessage } from '../errors.js';
import { quoteIdent } from '../sql/quote.js';
import { recreateSlot, slotFlag } from '../source/recreate-slot.js';
import { republishCommand, type RelayNames, type RepublishScope } from '../source/republish-command.js';
import { openTransactions, resendSince, type OpenTransactions } from './open-transactions.js';
import { findSlot, listSlots, type SlotStatus } from './slots.js';
import { createPublicationSql } from './publication-sql.js';

export type PublishAction = 'insert' | 'update' | 'delete' | 'truncate';

export interface PublishedTable {
  schema: string;
  table: string;
  /** The PG15 row filter as PostgreSQL shows it, or null. */
  rowFilter: string | null;
}

export interface PublicationInfo {
  name: string;
  owner: string;
  allTables: boolean;
  /** publish_via_partition_root: a partitioned table's rows are published under its own name, not its partitions'. */
  viaRoot: boolean;
  publish: PublishAction[];
  tables: PublishedTable[];
}

export type TableRef = Pick<TableMapping, 'schema' | 'table'>;

export async function findPublication(client: pg.Client, name: string): Promise<PublicationInfo | undefined> {
  const { rows } = await client.query<{ owner: string; puballtables: boolean; pubviaroot: boolean; pubinsert: boolean; pubupdate: boolean; pubdelete: boolean; pubtruncate: boolean }>(
    'SELECT pg_get_userbyid(pubowner) AS owner, puballtables, pubviaroot, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1',
    [name],
  );
  const pub = rows[0];
  if (!pub) return undefined;
  const tables = await client.query<{ schemaname: string; tablename: string; rowfilter: string | null }>(
    'SELECT schemaname, tablename, rowfilter FROM pg_publication_tables WHERE pubname = $1 ORDER BY schemaname, tablename',
    [name],
  );
  const flags: [PublishAction, boolean][] = [
    ['insert', pub.pubinsert],
    ['update', pub.pubupdate],
    ['delete', pub.pubdelete],
    ['truncate', pub.pubtruncate],
  ];
  return {
    name,
    owner: pub.owner,
    allTables: pub.puballtables,
    viaRoot: pub.pubviaroot,
    publish: flags.filter(([, on]) => on).map(([action]) => action),
    tables: tables.rows.map((t) => ({ schema: t.schemaname, table: t.tablename, rowFilter: t.rowfilter })),
  };
}

/** The publication `names.publication`; missing, the fix is the setup of the relay's slot, publication and tables (recreateSlot). */
export async function requirePublication(client: pg.Client, names: RelayNames): Promise<PublicationInfo> {
  const pub = await findPublication(client, names.publication);
  if (!pub) {
    throw new RelayError('PG_PUBLICATION_MISSING', `publication "${names.publication}" does not exist`, {
      hint: `check --publication, or create it: ${recreateSlot('setup', null, names)} (it creates the publication, and the slot after it when that is missing)`,
    });
  }
  return pub;
}

// What PostgreSQL answers to a row filter it cannot accept: syntax, unknown column or function, not boolean,
// not allowed in a filter (42P17), or a feature a filter may not use (0A000).
export const ROW_FILTER_ERRORS = new Set(['42601', '42703', '42883', '42804', '42P17', '0A000']);

/** Idempotent: an existing publication of that name is left as it is (existingPublicationChecks, of setup and publication create, say if it differs). */
export async function createPublication(client: pg.Client, name: string, tables: TableRef[], rowFilter?: string): Promise<{ created: boolean; publication: PublicationInfo }> {
  const existing = await findPublication(client, name);
  if (existing) return { created: false, publication: existing };
  try {
    // The extended protocol runs exactly one statement: a second one smuggled into the filter is a syntax error.
    await client.query({ text: createPublicationSql(name, tables, rowFilter), queryMode: 'extended' } as pg.QueryConfig);
  } catch (err) {
    const code = (err as { code?: string }).code;
    // Another session (a second replica's setup, run at the same time) created it since the read above: as one
    // found there, it is left as it is (setup checks it). duplicate_object when it committed before this statement
    // began, a unique violation of the catalog's name index when this one waited for its commit.
    const raced = code === '42710' || code === '23505' ? await findPublication(client, name) : undefined;
    if (raced) return { created: false, publication: raced };
    if (rowFilter && code !== undefined && ROW_FILTER_ERRORS.has(code)) throw new ConfigError(`PostgreSQL rejected --row-filter "${rowFilter}": ${errorMessage(err)}`, 'a row filter may use the table’s columns, constants and immutable built-in functions only');
    if (code === '42P01') {
      throw new RelayError('PG_QUERY_FAILED', `cannot create publication "${name}": ${errorMessage(err)}`, { hint: 'create the outbox table first (sql/001_outbox_table.sql), or point --table at it' });
    }
    throw err;
  }
  // Read back in the session that just created it.
  return { created: true, publication: (await findPublication(client, name))! };
}

/**
 * What dropping the publication costs while a slot may stream with it: pgoutput reads it at every change, so that
 * slot can no longer stream, and rows written until the publication exists again are never published, not even
 * once it is re-created. `named`: the relay's own --slot; otherwise other pgoutput slots of this database, which
 * may stream with it (a slot does not record its publication: a client names it when it starts streaming).
 */
function dropCost(republish: RelayNames, slots: SlotStatus[], named: boolean, at: Date, open?: OpenTransactions): string {
  const name = republish.publication;
  const from = resendSince(at, open);
  const resend = from
    ? `${republishCommand(`'${from.since}'`, republish)} (${from.why})`
    : `${republishCommand("'<T>'", republish)}, T = a minute before the oldest transaction open at the drop (this role cannot see every session's start: ask one with pg_read_all_stats, or take a margin longer than your longest transaction)`;
  const which = named
    ? `replication slot "${slots[0]!.name}" streams with publication "${name}": without it the slot can no longer stream`
    : `pgoutput replication slot(s) ${slots.map((s) => `"${s.name}" (${s.active ? `active, pid ${s.activePid}` : 'inactive'})`).join(', ')} in this database may stream with publication "${name}": without it such a slot can no longer stream`;
  // A failover slot made again without the flag is a plain one, which the next failover loses.
  const failover = slots.some((s) => s.failover === true) || null;
  // The other slots are other relays' (started with another --slot), whose settings this command does not have.
  const remake = named
    ? `outbox-relay slot drop${slotFlag(republish.slot)}, ${recreateSlot('setup', failover, republish)}`
    : `for each one that streamed with it, outbox-relay slot drop --slot <its name> and outbox-relay setup with its relay's --slot, --publication and table settings${failover ? ' and --failover-slot for a failover slot' : ''}`;
  return `${which}, and rows written until the publication exists again are never published, not even once it is re-created; to go on: ${remake}, then ${resend} (and from the last delivered event's commit time if the relay had not delivered everything)`;
}

/**
 * Drops the publication; while the relay's slot, or any other pgoutput slot of this database (a relay started
 * with another --slot), exists only with `force` (CONFIRMATION_REQUIRED otherwise), saying what it costs.
 * `republish`: the publication, and the tables the republish in that cost names.
 */
export async function dropPublication(client: pg.Client, republish: RepublishScope, slot: string, force: boolean): Promise<{ dropped: boolean; consequence?: string }> {
  const name = republish.publication;
  if (!(await findPublication(client, name))) return { dropped: false };
  const own = await findSlot(client, slot);
  const others = own ? [] : (await listSlots(client)).filter((s) => s.inCurrentDatabase && s.plugin === 'pgoutput');
  const slots = own ? [own] : others;
  // Read before the drop: a transaction open across it that inserts after it is never streamed (see OpenTransactions).
  const consequence = slots.length ? dropCost({ slot, ...republish }, slots, own !== undefined, new Date(), await openTransactions(client)) : undefined;
  if (consequence && !force) {
    throw new RelayError('CONFIRMATION_REQUIRED', `not dropped: ${consequence}`, {
      hint: own
        ? `drop the slot first (outbox-relay slot drop${slotFlag(slot)}) if nothing should stream any more, or pass --force to drop the publication anyway`
        : 'drop those slots first (outbox-relay slot drop --slot <name>) if nothing should stream with them any more, or pass --force to drop the publication anyway (when none of them streams with it)',
    });
  }
  await client.query(`DROP PUBLICATION ${quoteIdent(name)}`);
  return consequence ? { dropped: true, consequence } : { dropped: true };
}
