import { quoteIdent, quoteQualified } from '../sql/quote.js';
import type { TableRef } from './publications.js';

/**
 * What the relay's publications publish: INSERTs only; a partitioned table's rows under its own name, not its
 * partitions' (without publish_via_partition_root PostgreSQL publishes the partitions, which no mapping names, and
 * the relay could never start on a partitioned outbox table). No effect on a plain table.
 */
export const PUBLICATION_OPTIONS = "WITH (publish = 'insert', publish_via_partition_root = true)";

/** `rowFilter` must have passed checkRowFilter: it is the one part of the statement that is SQL as given. */
export function createPublicationSql(name: string, tables: TableRef[], rowFilter?: string): string {
  const list = tables.map((t) => `${quoteQualified(t.schema, t.table)}${rowFilter ? ` WHERE (${rowFilter})` : ''}`).join(', ');
  return `CREATE PUBLICATION ${quoteIdent(name)} FOR TABLE ${list} ${PUBLICATION_OPTIONS};`;
}
