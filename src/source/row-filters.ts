import type { TableRef } from '../ops/publications.js';

/**
 * The row filter (PostgreSQL 15+) each mapped table had in the publication when the relay last found it published,
 * null for none. A table taken out of the publication takes its filter out of the catalog too, so the statement that
 * adds it back can only have it from here: added back without it, the rows the filter kept out of the stream would
 * go to Kafka (and to a republish, which applies the publication's filter). One per relay process: each session's
 * pre-flight and the publication watch record what they find, and the refusal of either names it.
 */
export class SeenRowFilters {
  private readonly filters = new Map<string, string | null>();

  saw(table: TableRef, rowFilter: string | null): void {
    this.filters.set(key(table), rowFilter);
  }

  /** The filter last seen on `table`; null: it had none; undefined: the relay never found it published. */
  of(table: TableRef): string | null | undefined {
    return this.filters.get(key(table));
  }
}

const key = (t: TableRef) => JSON.stringify([t.schema, t.table]);
