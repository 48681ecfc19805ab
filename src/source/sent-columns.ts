import type { TableMapping } from '../config/types.js';
import { mappedColumns, unmappedColumns } from '../route/mapped-columns.js';
import { columnListFix } from '../ops/publication-sql.js';
import { quoteIdent, quoteLiteral } from '../sql/quote.js';
import { columnListOf, type CatalogQuery, type ColumnListColumns } from './publication-check.js';

/** A column a mapping reads that pgoutput will not send: the row mapper refuses every event of the table for it. */
export interface UnsentColumn {
  column: string;
  /** The setting that names it (mapping.payload, or a topic template's placeholder). */
  setting: string;
  table: string;
  why: string;
  fix: string;
}

/** The fix for a generated column pgoutput will not send. */
const WRITER_FILLS = 'map a column the writer fills (in the same INSERT)';

interface ColumnRow {
  name: string;
  /** pg_attribute.attgenerated: '' for an ordinary column, 's' stored, 'v' virtual (PostgreSQL 18). */
  generated: string;
}

interface PublishedRow extends ColumnListColumns {
  /** pg_publication.pubgencols (PostgreSQL 18+: 's' publishes stored generated columns); null before. */
  gencols: string | null;
  rowfilter: string | null;
}

/**
 * The columns `mapping` reads that the table does not have, or that pgoutput leaves out: generated ones (before
 * PostgreSQL 18 always; from 18 on unless listed or published with publish_generated_columns = stored) and those
 * the publication's column list (PostgreSQL 15+) omits. `publication`: the one that publishes the table, or
 * undefined where it is yet to be created (without a column list). Read from the catalog as it is now: a row
 * written before a change is decoded as it was then.
 */
export async function unsentColumns(query: CatalogQuery, mapping: TableMapping, publication: string | undefined): Promise<UnsentColumn[]> {
  const table = `${mapping.schema}.${mapping.table}`;
  const columns = await query<ColumnRow & Record<string, unknown>>(
    `SELECT a.attname AS name, a.attgenerated::text AS generated
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ${quoteLiteral(mapping.schema)} AND c.relname = ${quoteLiteral(mapping.table)} AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
  );
  if (columns.length === 0) return []; // no such table: the table's own check says so
  const [pub] =
    publication === undefined
      ? []
      : await query<PublishedRow & Record<string, unknown>>(
          // to_jsonb: columns PostgreSQL 14 does not have read as null there, instead of failing the query.
          `SELECT to_jsonb(p) ->> 'pubgencols' AS gencols, to_jsonb(r) ->> 'prattrs' AS listed,
                  to_jsonb(t) ->> 'attnames' AS attnames, to_jsonb(t) ->> 'rowfilter' AS rowfilter
             FROM pg_publication p
             JOIN pg_publication_tables t ON t.pubname = p.pubname AND t.schemaname = ${quoteLiteral(mapping.schema)} AND t.tablename = ${quoteLiteral(mapping.table)}
             JOIN pg_namespace n ON n.nspname = t.schemaname
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename
             LEFT JOIN pg_publication_rel r ON r.prpubid = p.oid AND r.prrelid = c.oid
            WHERE p.pubname = ${quoteLiteral(publication)}`,
        );
  const list = (pub && columnListOf(pub)) ?? undefined;
  // pubgencols is PostgreSQL 18's, the first to publish (stored) generated columns at all.
  const generatedPublishable = pub !== undefined && pub.gencols !== null;
  const unmapped = unmappedColumns(mapping, columns.map((c) => c.name));
  const unsent: UnsentColumn[] = [];
  const listedOut: UnsentColumn[] = [];
  for (const { column, setting, instead } of mappedColumns(mapping)) {
    const found = columns.find((c) => c.name === column);
    const named = { column, setting, table };
    if (!found) {
      unsent.push({ ...named, why: `${table} has no column "${column}"`, fix: `${instead(`a column of ${table}`)} (columns no setting maps: ${unmapped.join(', ') || 'none'}), or add the column` });
    } else if (found.generated === 'v' || (found.generated === 's' && !generatedPublishable)) {
      unsent.push({ ...named, why: `"${column}" is a generated column of ${table}, which ${found.generated === 'v' ? 'pgoutput never sends (virtual)' : pub ? 'pgoutput does not send before PostgreSQL 18' : 'a new publication does not send (from PostgreSQL 18 on, only with publish_generated_columns = stored)'}`, fix: WRITER_FILLS });
    } else if (list) {
      if (list.includes(column)) continue;
      const out = { ...named, why: `publication "${publication}" publishes only columns ${list.join(', ')} of ${table}`, fix: '' };
      unsent.push(out);
      listedOut.push(out);
    } else if (found.generated === 's' && pub!.gencols !== 's') {
      unsent.push({
        ...named,
        why: `"${column}" is a generated column of ${table}, which publication "${publication}" does not send (publish_generated_columns is not stored)`,
        fix: `ALTER PUBLICATION ${quoteIdent(publication!)} SET (publish_generated_columns = stored);  or ${WRITER_FILLS}`,
      });
    }
  }
  if (listedOut.length > 0) {
    // One fix for them all, the table's columns in its order: the list it has and those it leaves out.
    const listed = new Set([...list!, ...listedOut.map((u) => u.column)]);
    const fix = columnListFix(mapping.schema, mapping.table, publication, pub!.rowfilter, columns.map((c) => c.name).filter((name) => listed.has(name)));
    for (const u of listedOut) u.fix = fix;
  }
  return unsent;
}
