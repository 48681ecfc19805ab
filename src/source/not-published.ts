import { settingRef } from '../config/settings.js';
import { RelayError } from '../errors.js';
import { viaRootSql } from '../ops/publication-sql.js';
import type { TableRef } from '../ops/publications.js';
import { quoteIdent } from '../sql/quote.js';
import type { SeenPublication } from './seen-publication.js';
import { republishCommand, type RepublishScope } from './republish-command.js';

/** A predicate: `b` names the same table as `a`. */
export const sameTable = (a: TableRef) => (b: TableRef) => a.schema === b.schema && a.table === b.table;

function names(tables: TableRef[]): string {
  return `${tables.length === 1 ? 'table' : 'tables'} ${tables.map((t) => `${t.schema}.${t.table}`).join(', ')}`;
}

/**
 * The mapped tables the publication does not publish, all in one error with one statement per fix: the first one
 * alone took a start per table. `partitioned`: those of them that are partitioned tables, which a publication
 * without publish_via_partition_root publishes as their partitions, under names no mapping has. Either may have
 * been published before (taken out by an ALTER PUBLICATION or a migration that dropped and created the table
 * again, publish_via_partition_root turned off): pgoutput sends the rows written meanwhile never, or as another
 * table's, also once the table is published again; `since`, where known, is when it was last found published. A table
 * added back takes the column list and row filter `seen` last found on it: the catalog lost them with the table
 * (SeenPublication says what each kept out).
 */
export function notPublishedError(scope: RepublishScope, missing: TableRef[], partitioned: TableRef[], seen: SeenPublication, since?: string): RelayError {
  const { publication } = scope;
  const viaPartitions = missing.filter((t) => partitioned.some(sameTable(t)));
  const absent = missing.filter((t) => !viaPartitions.some(sameTable(t)));
  const problems: string[] = [];
  const fixes: string[] = [];
  if (absent.length > 0) {
    const one = absent.length === 1;
    problems.push(`${names(absent)} ${one ? 'is' : 'are'} not in publication "${publication}"`);
    const add = `ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${absent.map((t) => seen.tableSql(t)).join(', ')};`;
    fixes.push(`${add}  (${one ? 'does the table exist? check --table' : `do the tables exist? check ${settingRef('tables')}`})`);
    const unseen = absent.filter((t) => seen.of(t) === undefined);
    if (unseen.length > 0) {
      const which = unseen.length === 1 && one ? 'the table' : names(unseen);
      fixes.push(
        `whether ${which} had a column list or a row filter in the publication is not known (the relay never found ${unseen.length === 1 ? 'it' : 'them'} published): if so, restore them by hand in that statement (ADD TABLE … (<its columns>) WHERE (<its filter>)), or the rows a filter kept out go to Kafka, from the relay and from the republish, and PostgreSQL sends the columns a list kept out`,
      );
    }
  }
  if (viaPartitions.length > 0) {
    const [its, table] = viaPartitions.length === 1 ? ['its', "table's"] : ['their', "tables'"];
    problems.push(`${names(viaPartitions)} ${viaPartitions.length === 1 ? 'is' : 'are'} partitioned, and publication "${publication}" publishes ${its} partitions under their own names, not ${its} rows under the ${table}`);
    fixes.push(`${viaRootSql(publication)}  (outbox-relay setup and publication create set it)`);
  }
  // Streamed under the partitions' names, the rows are passed over as another table's: lost as surely.
  fixes.push(
    since === undefined
      ? `if they were published before, the rows written since they were not are never relayed: re-send them with ${republishCommand('<when that began>', scope)}`
      : `the rows written since ${since} are never relayed: once published again and the relay runs, re-send them with ${republishCommand(since, scope)} (consumers dedupe on the id header)`,
  );
  return new RelayError('PG_TABLE_NOT_PUBLISHED', problems.join('; '), { hint: fixes.join('; ') });
}
