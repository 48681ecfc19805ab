import type { RelayConfig, TableMapping } from '../config/types.js';

/**
 * What a printed republish names so that it re-sends the rows the relay streams. republish reads its publication
 * (for the row filter) and its tables from its own settings, as the relay does, so a command printed without them
 * read the defaults wherever the relay's came from flags: another publication's filter or none, and, for a relay
 * with the tables setting, the single-table default (public.outbox) instead of its tables.
 */
export interface RepublishScope {
  publication: string;
  /** The relay's tables when the tables setting lists them; undefined with the single-table settings (table). */
  tables?: TableMapping[] | undefined;
}

/** The scope of a relay with these settings. */
export function republishScope(config: Pick<RelayConfig, 'publication' | 'tables' | 'values'>): RepublishScope {
  return { publication: config.publication, tables: config.values.tables === undefined ? undefined : config.tables };
}

/**
 * A tables entry that stands on its own: every mapping column (an absent one as "", which the entry's own value
 * keeps from being filled in by the mapping.* settings), topic, routes and filter as the relay resolved them, so
 * republish reads the same rows (the filter, the columns it matches on, the time column of --since) and maps them
 * as the relay did, whatever the single-table settings are where it runs.
 */
function tableEntry(t: TableMapping): Record<string, unknown> {
  const c = t.columns;
  return {
    table: `${t.schema}.${t.table}`,
    mapping: { id: c.id, key: c.key, payload: c.payload, type: c.type ?? '', aggregateType: c.aggregateType ?? '', aggregateId: c.aggregateId ?? '', headers: c.headers ?? '', timestamp: c.timestamp ?? '' },
    topic: t.topic,
    ...(t.routes === undefined ? {} : { routes: t.routes }),
    ...(t.filter === undefined || Object.keys(t.filter).length === 0 ? {} : { filter: t.filter }),
  };
}

/** `value` as one shell word, to be pasted as printed: in single quotes unless it has no character a shell reads. */
function shellWord(value: string): string {
  return /^[\w.,:/@%+=-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * The republish that re-sends the rows written from `since` (a shell word as given) as the relay streams them:
 * with the relay's publication, and its tables (the tables setting as JSON) when the setting lists them.
 */
export function republishCommand(since: string, scope: RepublishScope): string {
  const tables = scope.tables === undefined ? '' : ` --tables ${shellWord(JSON.stringify(scope.tables.map(tableEntry)))}`;
  return `outbox-relay republish --since ${since} --publication ${shellWord(scope.publication)}${tables}`;
}
