import type { TableMapping } from '../config/types.js';
import { RelayError } from '../errors.js';
import { partitionedTablesSql } from '../ops/publication-sql.js';
import type { TableRef } from '../ops/publications.js';
import { quoteIdent, quoteLiteral } from '../sql/quote.js';
import { notPublishedError } from './not-published.js';
import type { SeenRowFilters } from './row-filters.js';

/** A query on some connection, as the replication stream runs it (simple protocol: values inlined, quoted). */
export type CatalogQuery = <R extends Record<string, unknown>>(sql: string) => Promise<R[]>;

/** The publication's row of pg_publication; undefined when it does not exist. */
export interface PublicationRow {
  pubinsert: boolean;
  pubviaroot: boolean;
}

export async function readPublication(query: CatalogQuery, publication: string): Promise<PublicationRow | undefined> {
  const [pub] = await query<{ pubinsert: boolean; pubviaroot: boolean }>(`SELECT pubinsert, pubviaroot FROM pg_publication WHERE pubname = ${quoteLiteral(publication)}`);
  return pub;
}

/**
 * The mapped tables by OID, once the publication `pub` (which exists) is found to publish the INSERTs of every one
 * of them; otherwise PG_PUBLICATION_MISSING or PG_TABLE_NOT_PUBLISHED naming each table and its fix. pgoutput
 * decides what it sends by the publication as it was when the row was written: a row inserted while its table was
 * not published is never streamed, also once the table is published again. `rowFilters`: records the row filter of
 * each table found published, and gives the one to add back for each missing. `since`: as notPublishedError's.
 */
export async function publishedTables(query: CatalogQuery, publication: string, pub: PublicationRow, tables: TableMapping[], rowFilters: SeenRowFilters, since?: string): Promise<Map<number, TableMapping>> {
  if (!pub.pubinsert) {
    throw new RelayError('PG_PUBLICATION_MISSING', `publication "${publication}" does not publish INSERTs`, {
      hint: `ALTER PUBLICATION ${quoteIdent(publication)} SET (publish = 'insert');`,
    });
  }
  // The oids from the catalogs by name: a ::regclass cast looks the schema up as the role, which needs USAGE on it,
  // and the relay's role needs none (it reads no table); without it every start failed 'permission denied for schema'.
  // to_jsonb: rowfilter is PostgreSQL 15's; an older server reads it as null instead of failing the query.
  const published = await query<{ schemaname: string; tablename: string; oid: string; rowfilter: string | null }>(
    `SELECT t.schemaname, t.tablename, c.oid::text AS oid, to_jsonb(t) ->> 'rowfilter' AS rowfilter
       FROM pg_publication_tables t
       JOIN pg_namespace n ON n.nspname = t.schemaname
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename
      WHERE t.pubname = ${quoteLiteral(publication)}`,
  );
  const tablesByOid = new Map<number, TableMapping>();
  const missing: TableMapping[] = [];
  for (const t of tables) {
    const entry = published.find((p) => p.schemaname === t.schema && p.tablename === t.table);
    if (entry) {
      tablesByOid.set(Number(entry.oid), t);
      rowFilters.saw(t, entry.rowfilter ?? null);
    } else missing.push(t);
  }
  if (missing.length > 0) {
    // A partitioned one's partitions are what the publication lists, under their own names, which no mapping names.
    const partitioned = pub.pubviaroot ? [] : await query<TableRef & Record<string, unknown>>(partitionedTablesSql(missing));
    throw notPublishedError(publication, missing, partitioned, rowFilters, since);
  }
  return tablesByOid;
}
