import { createPublicationOf } from '../ops/publication-sql.js';
import type { TableRef } from '../ops/publications.js';
import type { SeenPublication } from './seen-publication.js';
import { republishCommand, type RepublishScope } from './republish-command.js';
import { recreateSlot } from './slot-lost.js';

/** The publication the relay streams with: its name, the mapped tables, and what the relay last saw of them (SeenPublication). */
export interface KnownPublication {
  publication: string;
  tables: TableRef[];
  seen: SeenPublication;
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

/** The fix's step that creates the publication with `sql` (seenPublicationSql), then `then`: what makes the slot. */
export function createAsItWas(sql: string, then: string): string {
  return `create the publication as it was, with the column lists and row filters it had, which setup does not give back (its --row-filter is one filter for every table), or the rows a filter kept out go to Kafka: ${sql}  then ${then}`;
}

/**
 * The way on for a slot that cannot stream with `scope`'s publication, dropped while the slot existed (re-created since or
 * not): no slot streams the rows written while the publication did not exist, so a new one, then republish, from
 * `since` where known. Every place that finds the publication gone (a session's pre-flight, the stream's error, the
 * publication watch) says it here, with what `known` has of it as the relay last saw it (seenPublicationSql): the fix
 * creates it as it was, then setup makes the slot.
 */
export function newSlotThenRepublish(failover: boolean | null | undefined, scope: RepublishScope, known: KnownPublication | undefined, since?: string): string {
  const sql = seenPublicationSql(scope.publication, known);
  const create = sql === undefined ? `run ${recreateSlot('setup', failover)} (the publication, then the slot)` : createAsItWas(sql, `run ${recreateSlot('setup', failover)} (the slot; it keeps that publication)`);
  const resend =
    since === undefined
      ? `the rows written since the slot was created or the publication dropped: ${republishCommand('<that time>', scope)}`
      : `what was written since: ${republishCommand(since, scope)} (consumers dedupe on the id header)`;
  return `drop the slot (outbox-relay slot drop), ${create}, start the relay, then re-send ${resend}`;
}
