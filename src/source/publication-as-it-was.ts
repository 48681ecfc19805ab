import { createPublicationOf } from '../ops/publication-sql.js';
import type { TableRef } from '../ops/publications.js';
import { recreateSlot } from './recreate-slot.js';
import type { RelayNames } from './republish-command.js';
import type { SeenPublication } from './seen-publication.js';

// The publication as the relay last saw it, for every fix that creates it again: a dropped publication's
// (publication-dropped.ts), the pre-flight's with the slot gone too, and the lost slot's runbook (slot-lost.ts).

/** The publication the relay streams with: its name, the mapped tables, and what the relay last saw of them (SeenPublication). */
export interface KnownPublication {
  publication: string;
  tables: TableRef[];
  seen: SeenPublication;
}

/** The relay's publication and mapped tables (its settings') with what it saw of them: every fix that knows it gets it so. */
export function knownPublication(publication: string, tables: TableRef[], seen: SeenPublication): KnownPublication {
  return { publication, tables, seen };
}

/**
 * The CREATE PUBLICATION of `publication` as the relay last saw it (`known`, when it is the relay's): its column lists
 * and row filters (PostgreSQL 15+) went from the catalog with it, and setup gives back neither (its --row-filter is one
 * filter for every table). Undefined when the relay saw none on it (or never saw it): setup's is then the same.
 */
export function seenPublicationSql(publication: string, known: KnownPublication | undefined): string | undefined {
  const theirs = known?.publication === publication ? known : undefined;
  if (!theirs?.tables.some((t) => theirs.seen.of(t)?.rowFilter || theirs.seen.of(t)?.columns)) return undefined;
  return createPublicationOf(publication, theirs.tables, (t) => theirs.seen.of(t));
}

/**
 * The fix's step that creates the publication with `sql` (seenPublicationSql), then the slot with setup, which keeps
 * that publication as it is. `failover`, `names`: as recreateSlot's. `orSql`: the SQL that makes the slot instead, if offered.
 */
export function createAsItWas(sql: string, failover: boolean | null | undefined, names: RelayNames, orSql?: string): string {
  return `create the publication as it was, with the column lists and row filters it had, which setup does not give back (its --row-filter is one filter for every table), or the rows a filter kept out go to Kafka: ${sql}  then run ${recreateSlot('setup', failover, names)} (the slot; it keeps that publication)${orSql === undefined ? '' : `, or ${orSql}`}`;
}
