import type pg from 'pg';
import { errorMessage } from '../errors.js';
import { quoteIdent, quoteQualified } from '../sql/quote.js';
import { createPublicationSql, partitionedTablesSql, viaRootSql } from './publication-sql.js';
import { ROW_FILTER_ERRORS, type PublicationInfo, type TableRef } from './publications.js';
import type { TableMapping } from '../config/types.js';
import { mappedColumns } from '../route/mapped-columns.js';
import type { CatalogQuery } from '../source/publication-check.js';
import { sameTable } from '../source/not-published.js';
import { unsentColumns } from '../source/sent-columns.js';
import { recreateSlot, slotFlag } from '../source/recreate-slot.js';
import type { RepublishScope } from '../source/republish-command.js';
import { FAILOVER_SLOTS_SINCE, failoverUnsupported, notFailoverSlot, slotProblem, type SlotStatus } from './slots.js';

/** One precondition of the relay, checked on the server; a failed one says what to run. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export interface CheckTarget {
  publication: string;
  tables: TableMapping[];
  /** The publication and tables a lost slot's fix names in its republish (republishScope). */
  republish: RepublishScope;
  rowFilter?: string;
  /** What exists already: a missing object adds the checks for creating it, an existing one is checked as is. */
  slot: SlotStatus | undefined;
  existingPublication: PublicationInfo | undefined;
  /** --failover-slot: the slot must be (or be created as) a PostgreSQL 17 failover slot. */
  failoverSlot?: boolean;
}

interface ServerRow {
  wal_level: string;
  max_slots: number;
  used_slots: number;
  max_senders: number;
  used_senders: number;
  role: string;
  superuser: boolean;
  replication: boolean;
  /** Member of Amazon RDS's rds_replication role (RDS and Aurora grant replication so); null where no such role exists. */
  rds_replication: boolean | null;
  database: string;
  can_create: boolean;
  version_num: number;
  version: string;
}

const SERVER_QUERY = `
  SELECT current_setting('wal_level') AS wal_level,
         current_setting('max_replication_slots')::int AS max_slots, (SELECT count(*) FROM pg_replication_slots)::int AS used_slots,
         current_setting('max_wal_senders')::int AS max_senders, (SELECT count(*) FROM pg_stat_replication)::int AS used_senders,
         r.rolname AS role, r.rolsuper AS superuser, r.rolreplication AS replication,
         (SELECT pg_has_role(current_user, g.oid, 'MEMBER') FROM pg_roles g WHERE g.rolname = 'rds_replication') AS rds_replication,
         current_database() AS database, has_database_privilege(current_database(), 'CREATE') AS can_create,
         current_setting('server_version_num')::int AS version_num, split_part(current_setting('server_version'), ' ', 1) AS version
    FROM pg_roles r WHERE r.rolname = current_user`;

const RESTART = 'then restart PostgreSQL (managed services: change the parameter group)';

function serverChecks(s: ServerRow, slot: SlotStatus | undefined): Check[] {
  // A relay streaming from the slot holds a WAL sender already: setup run again beside it needs none more.
  const sendersOk = s.used_senders < s.max_senders || slot?.active === true;
  return [
    s.wal_level === 'logical'
      ? { name: 'wal_level', ok: true, detail: 'logical' }
      : { name: 'wal_level', ok: false, detail: `${s.wal_level}; logical decoding needs logical`, fix: `ALTER SYSTEM SET wal_level = logical;  ${RESTART}` },
    slot !== undefined || s.used_slots < s.max_slots
      ? { name: 'max_replication_slots', ok: true, detail: `${s.used_slots} of ${s.max_slots} in use` }
      : { name: 'max_replication_slots', ok: false, detail: `all ${s.max_slots} in use`, fix: `ALTER SYSTEM SET max_replication_slots = ${s.max_slots + 1};  ${RESTART}  (or drop an unused slot)` },
    sendersOk
      ? { name: 'max_wal_senders', ok: true, detail: `${s.used_senders} of ${s.max_senders} in use${slot?.active ? `, one by the connection streaming from slot "${slot.name}"` : ''}` }
      : { name: 'max_wal_senders', ok: false, detail: `all ${s.max_senders} in use`, fix: `ALTER SYSTEM SET max_wal_senders = ${s.max_senders + 1};  ${RESTART}` },
    replicationCheck(s),
  ];
}

/**
 * REPLICATION or SUPERUSER; on Amazon RDS and Aurora, whose customer roles cannot have either, membership of
 * rds_replication instead (its existence tells such a server): the check failed there for a role set up as
 * docs/operations.md says, and its fix was a statement RDS refuses.
 */
function replicationCheck(s: ServerRow): Check {
  const name = 'replication privilege';
  if (s.superuser || s.replication) return { name, ok: true, detail: `role "${s.role}" has ${s.superuser ? 'SUPERUSER' : 'REPLICATION'}` };
  if (s.rds_replication) return { name, ok: true, detail: `role "${s.role}" is a member of rds_replication (Amazon RDS / Aurora)` };
  if (s.rds_replication === false) return { name, ok: false, detail: `role "${s.role}" is not a member of rds_replication, nor has REPLICATION or SUPERUSER`, fix: `as the master user: GRANT rds_replication TO ${quoteIdent(s.role)};` };
  return { name, ok: false, detail: `role "${s.role}" has neither REPLICATION nor SUPERUSER`, fix: `as a superuser: ALTER ROLE ${quoteIdent(s.role)} WITH REPLICATION;` };
}

/** The table must exist; creating the publication also needs its ownership and CREATE on the database. */
async function tableChecks(client: pg.Client, s: ServerRow, target: CheckTarget): Promise<Check[]> {
  const checks: Check[] = [];
  const creating = target.existingPublication === undefined;
  const createSql = createPublicationSql(target.publication, target.tables, target.rowFilter);
  for (const t of target.tables) {
    const name = `${t.schema}.${t.table}`;
    const { rows } = await client.query<{ owner: string; owned: boolean; schema_usage: boolean }>(
      `SELECT pg_get_userbyid(c.relowner) AS owner, pg_has_role(current_user, c.relowner, 'USAGE') AS owned,
              has_schema_privilege(current_user, n.oid, 'USAGE') AS schema_usage
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
      [t.schema, t.table],
    );
    const table = rows[0];
    if (!table) {
      checks.push({ name: `table ${name}`, ok: false, detail: 'does not exist', fix: 'create the outbox table (sql/001_outbox_table.sql), or point --table at it' });
    } else if (creating && table.owned && !table.schema_usage) {
      // CREATE PUBLICATION looks the table up by name: its owner needs USAGE on the schema too.
      checks.push({
        name: `table ${name}`,
        ok: false,
        detail: `owned by "${table.owner}", but role "${s.role}" has no USAGE on schema ${t.schema}, which publishing it needs`,
        fix: `as the schema owner: GRANT USAGE ON SCHEMA ${quoteIdent(t.schema)} TO ${quoteIdent(s.role)};`,
      });
    } else if (!creating || table.owned) {
      checks.push({ name: `table ${name}`, ok: true, detail: creating ? `owned by "${table.owner}" (needed to publish it)` : `owned by "${table.owner}"` });
    } else {
      checks.push({
        name: `table ${name}`,
        ok: false,
        detail: `owned by "${table.owner}"; publishing it needs ownership`,
        fix: `as "${table.owner}" (the owner) run: ${createSql}  then run setup again to create the slot`,
      });
    }
    if (table) checks.push(await columnsCheck(client, t, target.existingPublication));
  }
  if (creating && !s.superuser) {
    checks.push(
      s.can_create
        ? { name: 'CREATE on database', ok: true, detail: `role "${s.role}" may create publications in "${s.database}"` }
        : { name: 'CREATE on database', ok: false, detail: `role "${s.role}" may not create publications in "${s.database}"`, fix: `as the database owner: GRANT CREATE ON DATABASE ${quoteIdent(s.database)} TO ${quoteIdent(s.role)};  (not needed when the table owner creates the publication)` },
    );
  }
  return checks;
}

/**
 * Every column the mapping reads must reach the relay: a missing, generated or column-listed-out one halts it at the
 * first event of the table (SCHEMA_COLUMN_MISSING), found otherwise only once one is written. The publication's
 * column list counts where it publishes the table already; one setup is to create has none.
 */
async function columnsCheck(client: pg.Client, mapping: TableMapping, pub: PublicationInfo | undefined): Promise<Check> {
  const name = `columns of ${mapping.schema}.${mapping.table}`;
  const publishes = pub?.tables.some(sameTable(mapping));
  const query: CatalogQuery = async (sql) => (await client.query(sql)).rows as never;
  const unsent = await unsentColumns(query, mapping, publishes ? pub!.name : undefined);
  if (unsent.length === 0) return { name, ok: true, detail: `${[...new Set(mappedColumns(mapping).map((m) => m.column))].join(', ')} published` };
  return {
    name,
    ok: false,
    detail: unsent.map((u) => `${u.column} (${u.setting}): ${u.why}`).join('; '),
    fix: [...new Set(unsent.map((u) => u.fix))].join('; '),
  };
}

/**
 * PostgreSQL's own text of `rowFilter` on `table`, as pg_publication_tables shows a publication's filter: the
 * same deparser reads it back from a CHECK constraint on a temporary copy of the table, in a transaction rolled
 * back (no publication is created, so neither ownership nor CREATE on the database is needed).
 */
async function deparseRowFilter(client: pg.Client, table: TableRef, rowFilter: string): Promise<string> {
  await client.query('BEGIN');
  try {
    await client.query(`CREATE TEMPORARY TABLE outbox_relay_filter_probe (LIKE ${quoteQualified(table.schema, table.table)})`);
    // The extended protocol runs exactly one statement: a second one smuggled into the filter is a syntax error.
    await client.query({ text: `ALTER TABLE pg_temp.outbox_relay_filter_probe ADD CHECK (${rowFilter})`, queryMode: 'extended' } as pg.QueryConfig);
    // Only the CHECK: from PostgreSQL 18 on, the NOT NULL columns LIKE copies are constraints in pg_constraint too
    // (without an expression), and one of those read first made every filter "null", passing an unfiltered publication.
    const { rows } = await client.query<{ filter: string }>(`SELECT pg_get_expr(conbin, conrelid) AS filter FROM pg_constraint WHERE conrelid = 'pg_temp.outbox_relay_filter_probe'::regclass AND contype = 'c'`);
    return rows[0]!.filter;
  } finally {
    await client.query('ROLLBACK');
  }
}

/**
 * --row-filter of a publication setup is to create: PostgreSQL's own verdict on the very statement a real run sends,
 * in a transaction rolled back, so that --dry-run does not pass a filter the real run is refused (an unknown column,
 * a function a filter may not call). Asked only once the role may create the publication at all.
 */
async function newRowFilterCheck(client: pg.Client, target: CheckTarget, rowFilter: string): Promise<Check> {
  const name = 'row filter';
  await client.query('BEGIN');
  try {
    await client.query({ text: createPublicationSql(target.publication, target.tables, rowFilter), queryMode: 'extended' } as pg.QueryConfig);
    return { name, ok: true, detail: `PostgreSQL accepts WHERE (${rowFilter})` };
  } catch (err) {
    // Anything else (a lock wait that ran out, a privilege) fails the real run as it fails this one.
    if (!ROW_FILTER_ERRORS.has((err as { code?: string }).code ?? '')) throw err;
    return { name, ok: false, detail: `PostgreSQL rejected --row-filter "${rowFilter}": ${errorMessage(err)}`, fix: 'a row filter may use the table’s columns, constants and immutable built-in functions only: correct --row-filter' };
  } finally {
    await client.query('ROLLBACK');
  }
}

/** The publication must filter each outbox table's rows with --row-filter when setup was given one. */
async function rowFilterChecks(client: pg.Client, pub: PublicationInfo, tables: TableRef[], rowFilter: string): Promise<Check[]> {
  const filtered = tables.map((t) => `${quoteQualified(t.schema, t.table)} WHERE (${rowFilter})`).join(', ');
  // SET TABLE replaces every table of the publication: with others in it (another consumer's), it would take them
  // out, and their rows written until they were added again would never stream. One transaction that drops and adds
  // the outbox tables leaves the others alone and the outbox tables never out of it.
  const member = (t: TableRef) => pub.tables.some(sameTable(t));
  const others = pub.tables.some((p) => !tables.some(sameTable(p)));
  const pubName = quoteIdent(pub.name);
  const alter = others
    ? `BEGIN; ALTER PUBLICATION ${pubName} DROP TABLE ${tables.filter(member).map((t) => quoteQualified(t.schema, t.table)).join(', ')}; ALTER PUBLICATION ${pubName} ADD TABLE ${filtered}; COMMIT;`
    : `ALTER PUBLICATION ${pubName} SET TABLE ${filtered};`;
  const checks: Check[] = [];
  for (const t of tables) {
    const published = pub.tables.find(sameTable(t));
    if (!published) continue; // publicationChecks reports the missing table
    const name = `row filter ${t.schema}.${t.table}`;
    let wanted: string;
    try {
      wanted = await deparseRowFilter(client, t, rowFilter);
    } catch (err) {
      checks.push({
        name,
        ok: false,
        detail: `publication ${pub.name} filters ${published.rowFilter ? `WHERE ${published.rowFilter}` : 'nothing'}; cannot tell whether that is --row-filter "${rowFilter}": ${errorMessage(err)}`,
        fix: `if it is not: ${alter}  (as the table owner); if it is, run setup without --row-filter`,
      });
      continue;
    }
    checks.push(
      published.rowFilter === wanted
        ? { name, ok: true, detail: `WHERE ${wanted}` }
        : { name, ok: false, detail: `publication ${pub.name} filters ${published.rowFilter ? `WHERE ${published.rowFilter}` : 'nothing'}, not WHERE ${wanted}`, fix: `as the table owner: ${alter}` },
    );
  }
  return checks;
}

/** An existing publication must publish INSERTs, only those, of every outbox table. */
function publicationChecks(pub: PublicationInfo, tables: TableRef[], partitioned: TableRef[]): Check[] {
  const checks: Check[] = [];
  const actions = pub.publish.join(', ') || 'nothing';
  if (pub.publish.length !== 1 || pub.publish[0] !== 'insert') {
    checks.push({ name: `publication ${pub.name}`, ok: false, detail: `publishes ${actions}; the relay needs insert only`, fix: `ALTER PUBLICATION ${quoteIdent(pub.name)} SET (publish = 'insert');` });
  }
  for (const t of tables) {
    if (pub.tables.some(sameTable(t))) continue;
    // Without publish_via_partition_root PostgreSQL lists a partitioned table's partitions, not the table, and ADD
    // TABLE of it fails ("already member") when it is one.
    if (!pub.viaRoot && partitioned.some(sameTable(t))) {
      checks.push({
        name: `publication ${pub.name}`,
        ok: false,
        detail: `publishes the partitions of ${t.schema}.${t.table} under their own names (publish_via_partition_root is off), which no mapping names`,
        fix: `${viaRootSql(pub.name)}${pub.allTables ? '' : `  (and, if ${t.schema}.${t.table} is not a member yet: ALTER PUBLICATION ${quoteIdent(pub.name)} ADD TABLE ${quoteQualified(t.schema, t.table)};)`}`,
      });
    } else {
      checks.push({ name: `publication ${pub.name}`, ok: false, detail: `does not include ${t.schema}.${t.table}`, fix: `ALTER PUBLICATION ${quoteIdent(pub.name)} ADD TABLE ${quoteQualified(t.schema, t.table)};` });
    }
  }
  const published = pub.tables.map((p) => `${p.schema}.${p.table}${p.rowFilter ? ` WHERE ${p.rowFilter}` : ''}`);
  return checks.length ? checks : [{ name: `publication ${pub.name}`, ok: true, detail: `publishes ${actions} of ${published.join(', ')}` }];
}

/**
 * Whether an existing publication is the one the relay needs: INSERTs only of every outbox table and, given one,
 * filtered with `rowFilter`. What setup checks, and what `publication create` checks of a publication it finds.
 */
export async function existingPublicationChecks(client: pg.Client, pub: PublicationInfo, tables: TableRef[], rowFilter: string | undefined): Promise<Check[]> {
  const checks = publicationChecks(pub, tables, await partitionedTables(client, tables));
  return rowFilter === undefined ? checks : [...checks, ...(await rowFilterChecks(client, pub, tables, rowFilter))];
}

/** Those of `tables` that are partitioned. */
async function partitionedTables(client: pg.Client, tables: TableRef[]): Promise<TableRef[]> {
  return (await client.query<{ schema: string; table: string }>(partitionedTablesSql(tables))).rows;
}

/**
 * pgoutput reads the publication with the catalog as of each change it decodes: a slot created before its
 * publication never streams the rows written in between (the relay passes over them; pg_recvlogical stops
 * with "publication does not exist"). Only a slot created after the publication serves the relay.
 */
function slotBeforePublication(slot: SlotStatus, republish: RepublishScope): Check {
  const { publication } = republish;
  return {
    name: `slot ${slot.name}`,
    ok: false,
    detail: `exists, but publication "${publication}" does not: a slot created before its publication never streams the rows written in between`,
    fix: `outbox-relay slot drop${slotFlag(slot.name)}, then ${recreateSlot('setup', slot.failover, { slot: slot.name, ...republish })} again (publication first, then the slot)`,
  };
}

/**
 * --failover-slot: only PostgreSQL 17 has failover slots, and an existing slot without the property is not made
 * one by a new setup (it is left alone): both would leave a slot that a failover loses, found out only then.
 */
function failoverSlotCheck(s: ServerRow, slot: SlotStatus | undefined): Check {
  const name = 'failover slot';
  if (s.version_num < FAILOVER_SLOTS_SINCE) {
    const refusal = failoverUnsupported(s.version);
    return { name, ok: false, detail: refusal.message.replace(/^not created: /, ''), fix: refusal.hint! };
  }
  if (slot?.failover === false) {
    const refusal = notFailoverSlot(slot.name);
    return { name, ok: false, detail: refusal.message, fix: refusal.hint! };
  }
  return { name, ok: true, detail: slot ? `slot ${slot.name} is one` : `PostgreSQL ${s.version}: the slot is created as one` };
}

/** Everything `setup` needs to succeed and the relay needs to stream, read-only. */
export async function runChecks(client: pg.Client, target: CheckTarget): Promise<Check[]> {
  const { rows } = await client.query<ServerRow>(SERVER_QUERY);
  const server = rows[0]!;
  const checks = [...serverChecks(server, target.slot), ...(await tableChecks(client, server, target))];
  if (target.failoverSlot) checks.push(failoverSlotCheck(server, target.slot));
  if (target.existingPublication) checks.push(...(await existingPublicationChecks(client, target.existingPublication, target.tables, target.rowFilter)));
  else if (target.rowFilter !== undefined && checks.every((c) => c.ok)) checks.push(await newRowFilterCheck(client, target, target.rowFilter));
  if (target.slot) {
    const problem = slotProblem(target.slot, target.republish);
    if (problem) checks.push({ name: `slot ${target.slot.name}`, ok: false, detail: problem.message, fix: problem.hint });
    else if (!target.existingPublication) checks.push(slotBeforePublication(target.slot, target.republish));
    else checks.push({ name: `slot ${target.slot.name}`, ok: true, detail: `pgoutput, confirmed at ${target.slot.confirmedFlushLsn}` });
  }
  return checks;
}
