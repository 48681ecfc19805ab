import { publishedTableSql, type PublishedAs } from '../ops/publication-sql.js';
import type { TableRef } from '../ops/publications.js';

/**
 * The column list and row filter (PostgreSQL 15+) each mapped table had in the publication when the relay last found
 * it published. A table taken out of the publication takes both out of the catalog too, so the statement that adds
 * it back can only have them from here: added back without its row filter, the rows the filter kept out of the
 * stream would go to Kafka (and to a republish, which applies the publication's filter); without its column list,
 * PostgreSQL would send every column of its rows again, those the list kept out of the replication stream included.
 * One per relay process: each session's pre-flight and the publication watch record what they find, and the
 * refusal of either names it.
 */
export class SeenPublication {
  private readonly seen = new Map<string, PublishedAs>();

  saw(table: TableRef, as: PublishedAs): void {
    this.seen.set(key(table), as);
  }

  /** What `table` was last seen published with; undefined: the relay never found it published. */
  of(table: TableRef): PublishedAs | undefined {
    return this.seen.get(key(table));
  }

  /** `table` as ADD TABLE and FOR TABLE name it, with the column list and row filter it was last seen with. */
  tableSql(table: TableRef): string {
    return publishedTableSql(table, this.of(table));
  }
}

const key = (t: TableRef) => JSON.stringify([t.schema, t.table]);
