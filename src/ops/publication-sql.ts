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

/** What a publication has of a table besides its name (PostgreSQL 15+): its column list and row filter; null for none. */
export interface PublishedAs {
  columns: string[] | null;
  /** SQL as PostgreSQL printed it (pg_get_expr), or as checkRowFilter passed it. */
  rowFilter: string | null;
}

/**
 * A table as FOR TABLE and ADD TABLE name it: `"schema"."table" ("a", "b") WHERE (<filter>)`, with the column list
 * and row filter `as` has (none when undefined). The one place they are put into SQL.
 */
export function publishedTableSql(table: TableRef, as?: Partial<PublishedAs>): string {
  const columns = as?.columns ? ` (${as.columns.map(quoteIdent).join(', ')})` : '';
  const where = as?.rowFilter ? ` WHERE (${as.rowFilter})` : '';
  return `${quoteQualified(table.schema, table.table)}${columns}${where}`;
}

/**
 * How to have a publication's column list of a table name `columns` (the list it has and the mapped columns it
 * leaves out): PostgreSQL cannot change a list in place, and `SET TABLE` replaces every table of the publication,
 * so one transaction drops the table and adds it again with the new list and its row filter. A row written meanwhile
 * is decoded with the publication either before or after, never without the table, which would leave it unstreamed
 * for good (measured on PostgreSQL 15 and 18: 3,000 rows inserted during 100 such transactions, all 3,000 decoded;
 * the same two statements outside a transaction lost 256). `rowFilter`: null for none, undefined when not known.
 */
export function columnListFix(schema: string, table: string, publication: string | undefined, rowFilter: string | null | undefined, columns: string[]): string {
  const pub = publication === undefined ? '<publication>' : quoteIdent(publication);
  const added = publishedTableSql({ schema, table }, { columns, rowFilter: rowFilter ?? null });
  const unknown = rowFilter === undefined ? ' [WHERE (its row filter, if it has one)]' : '';
  return `add the missing columns to its column list, in one transaction (a row written while the table is out of the publication is never streamed): BEGIN; ALTER PUBLICATION ${pub} DROP TABLE ${quoteQualified(schema, table)}; ALTER PUBLICATION ${pub} ADD TABLE ${added}${unknown}; COMMIT;`;
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
  return createPublicationOf(name, tables, () => ({ rowFilter: rowFilter ?? null }));
}

/** The relay's CREATE PUBLICATION of `tables`, each with the column list and row filter `as` gives it. */
export function createPublicationOf(name: string, tables: TableRef[], as: (table: TableRef) => Partial<PublishedAs> | undefined): string {
  return `CREATE PUBLICATION ${quoteIdent(name)} FOR TABLE ${tables.map((t) => publishedTableSql(t, as(t))).join(', ')} ${PUBLICATION_OPTIONS};`;
}
