import { quoteIdent, quoteLiteral, quoteQualified } from '../sql/quote.js';
import type { TableRef } from './publications.js';

/**
 * What the relay's publications publish: INSERTs only; a partitioned table's rows under its own name, not its
 * partitions' (without publish_via_partition_root PostgreSQL publishes the partitions, which no mapping names, and
 * the relay could never start on a partitioned outbox table). No effect on a plain table.
 */
export const PUBLICATION_OPTIONS = "WITH (publish = 'insert', publish_via_partition_root = true)";

/** The fix for a publication that lists a partitioned table's partitions instead of its rows under its own name. */
export function viaRootSql(name: string): string {
  return `ALTER PUBLICATION ${quoteIdent(name)} SET (publish_via_partition_root = true);`;
}

/**
 * How to publish every column of a table that a publication lists with a column list: PostgreSQL cannot change a
 * list in place, and `SET TABLE` replaces every table of the publication, so one transaction drops the table and
 * adds it again (with its row filter): a row written meanwhile is decoded with the publication either before or
 * after, never without the table, which would leave it unstreamed for good.
 */
export function columnListFix(schema: string, table: string, publication?: string, rowFilter?: string | null): string {
  const pub = publication === undefined ? '<publication>' : quoteIdent(publication);
  const t = quoteQualified(schema, table);
  // undefined: not known (the row mapper's fix); null: none.
  const where = rowFilter ? ` WHERE (${rowFilter})` : rowFilter === undefined ? ' [WHERE (its row filter, if it has one)]' : '';
  return `publish all its columns, in one transaction (a row written while the table is out of the publication is never streamed): BEGIN; ALTER PUBLICATION ${pub} DROP TABLE ${t}; ALTER PUBLICATION ${pub} ADD TABLE ${t}${where}; COMMIT;`;
}

/**
 * Those of `tables` that are partitioned, as rows (schema, table): for the checks of pre-flight (on the replication
 * connection, which takes no parameters) and of setup alike.
 */
export function partitionedTablesSql(tables: TableRef[]): string {
  const list = tables.map((t) => `(${quoteLiteral(t.schema)}, ${quoteLiteral(t.table)})`).join(', ');
  return `SELECT n.nspname AS schema, c.relname AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind = 'p' AND (n.nspname, c.relname) IN (${list})`;
}

/** `rowFilter` must have passed checkRowFilter: it is the one part of the statement that is SQL as given. */
export function createPublicationSql(name: string, tables: TableRef[], rowFilter?: string): string {
  const list = tables.map((t) => `${quoteQualified(t.schema, t.table)}${rowFilter ? ` WHERE (${rowFilter})` : ''}`).join(', ');
  return `CREATE PUBLICATION ${quoteIdent(name)} FOR TABLE ${list} ${PUBLICATION_OPTIONS};`;
}
