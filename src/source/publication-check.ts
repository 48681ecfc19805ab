import type { TableMapping } from '../config/types.js';
import { RelayError } from '../errors.js';
import { partitionedTablesSql } from '../ops/publication-sql.js';
import type { TableRef } from '../ops/publications.js';
import { quoteIdent, quoteLiteral } from '../sql/quote.js';
import { notPublishedError } from './not-published.js';
import type { RepublishScope } from './republish-command.js';
import type { SeenPublication } from './seen-publication.js';

/** A query on some connection, as the replication stream runs it (simple protocol: values inlined, quoted). */
export type CatalogQuery = <R extends Record<string, unknown>>(sql: string) => Promise<R[]>;

/** The publication's row of pg_publication; undefined when it does not exist. */
export interface PublicationRow {
  pubinsert: boolean;
  pubviaroot: boolean;
}

/** Where a publication's row for a table (pg_publication_tables and pg_publication_rel, PostgreSQL 15+) says which columns it publishes. */
export type ColumnListColumns = {
  /** pg_publication_rel.prattrs: null unless the table has a column list of its own. */
  listed: string | null;
  /** pg_publication_tables.attnames as JSON: every column published, all of the table's where it has no list. */
  attnames: string | null;
};

/** The table's column list, null without one: attnames alone lists every column then, which no ADD TABLE should freeze. */
export function columnListOf(row: ColumnListColumns): string[] | null {
  return row.listed ? (JSON.parse(row.attnames ?? '[]') as string[]) : null;
}

export async function readPublication(query: CatalogQuery, publication: string): Promise<PublicationRow | undefined> {
  const [pub] = await query<{ pubinsert: boolean; pubviaroot: boolean }>(`SELECT pubinsert, pubviaroot FROM pg_publication WHERE pubname = ${quoteLiteral(publication)}`);
  return pub;
}

/**
 * The mapped tables by OID, once the publication `pub` (which exists) is found to publish the INSERTs of every one
 * of them; otherwise PG_PUBLICATION_MISSING or PG_TABLE_NOT_PUBLISHED naming each table and its fix. pgoutput
 * decides what it sends by the publication as it was when the row was written: a row inserted while its table was
 * not published is never streamed, also once the table is published again. `seen`: records the column list and row
 * filter of each table found published, and gives those to add back for each missing. `since`: as notPublishedError's.
 */
export async function publishedTables(query: CatalogQuery, scope: RepublishScope, pub: PublicationRow, tables: TableMapping[], seen: SeenPublication, since?: string): Promise<Map<number, TableMapping>> {
  const { publication } = scope;
  if (!pub.pubinsert) {
    throw new RelayError('PG_PUBLICATION_MISSING', `publication "${publication}" does not publish INSERTs`, {
      hint: `ALTER PUBLICATION ${quoteIdent(publication)} SET (publish = 'insert');`,
    });
  }
  // The oids from the catalogs by name: a ::regclass cast looks the schema up as the role, which needs USAGE on it,
  // and the relay's role needs none (it reads no table); without it every start failed 'permission denied for schema'.
  // to_jsonb: rowfilter, attnames and prattrs are PostgreSQL 15's; an older server reads them as null instead of failing the query.
  const published = await query<{ schemaname: string; tablename: string; oid: string; rowfilter: string | null } & ColumnListColumns>(
    `SELECT t.schemaname, t.tablename, c.oid::text AS oid, to_jsonb(t) ->> 'rowfilter' AS rowfilter,
            to_jsonb(t) ->> 'attnames' AS attnames, to_jsonb(r) ->> 'prattrs' AS listed
       FROM pg_publication_tables t
       JOIN pg_namespace n ON n.nspname = t.schemaname
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename
       JOIN pg_publication p ON p.pubname = t.pubname
       LEFT JOIN pg_publication_rel r ON r.prpubid = p.oid AND r.prrelid = c.oid
      WHERE t.pubname = ${quoteLiteral(publication)}`,
  );
  const tablesByOid = new Map<number, TableMapping>();
  const missing: TableMapping[] = [];
  for (const t of tables) {
    const entry = published.find((p) => p.schemaname === t.schema && p.tablename === t.table);
    if (entry) {
      tablesByOid.set(Number(entry.oid), t);
      seen.saw(t, { columns: columnListOf(entry), rowFilter: entry.rowfilter ?? null });
    } else missing.push(t);
  }
  if (missing.length > 0) {
    // A partitioned one's partitions are what the publication lists, under their own names, which no mapping names.
    const partitioned = pub.pubviaroot ? [] : await query<TableRef & Record<string, unknown>>(partitionedTablesSql(missing));
    throw notPublishedError(scope, missing, partitioned, seen, since);
  }
  return tablesByOid;
}
