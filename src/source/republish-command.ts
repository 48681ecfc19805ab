import { SETTINGS_BY_KEY } from '../config/settings.js';
import { FILTER_KEYS } from '../config/tables.js';
import type { RelayConfig, TableMapping } from '../config/types.js';

/**
 * What a printed republish names so that it re-sends the rows the relay streams. republish reads its publication
 * (for the row filter) and its tables from its own settings, as the relay does, so a command printed without them
 * read the defaults wherever the relay's came from flags: another publication's filter or none, the single-table
 * default (public.outbox) instead of the relay's table or tables, and the default columns and topic.
 */
export type RepublishScope =
  | { publication: string; tables?: undefined }
  | {
      publication: string;
      tables: TableMapping[];
      /** Whether the relay read the tables setting (printed as --tables) or the single-table settings (as --table and its flags). */
      listed: boolean;
    };

/** The scope of a relay with these settings. */
export function republishScope(config: Pick<RelayConfig, 'publication' | 'tables' | 'values'>): RepublishScope {
  return { publication: config.publication, tables: config.tables, listed: config.values.tables !== undefined };
}

/**
 * A tables entry that stands on its own: every mapping column (an absent one as "", which the entry's own value
 * keeps from being filled in by the mapping.* settings), topic, routes and filter as the relay resolved them, so
 * republish reads the same rows (the filter, the columns it matches on, the time column of --since) and maps them
 * as the relay did, whatever the single-table settings are where it runs.
 */
interface TableEntry {
  table: string;
  mapping: Record<string, string>;
  topic: string;
  routes?: TableMapping['routes'];
  filter?: TableMapping['filter'];
}

function tableEntry(t: TableMapping): TableEntry {
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
export function shellWord(value: string): string {
  return /^[\w.,:/@%+=-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/** A printed command's flags for these settings' values, each as one shell word. */
function flagWords(values: [string, string][]): string {
  return values.map(([key, value]) => ` ${SETTINGS_BY_KEY.get(key)!.flag} ${shellWord(value)}`).join('');
}

/**
 * A list setting's value as a flag gives it back: comma-separated where its setting reads that as `entries`, else as
 * a JSON array (an entry holding a comma, or space at its ends, which the comma form splits or trims).
 */
function listValue(key: string, entries: string[]): string {
  const joined = entries.join(',');
  const read = SETTINGS_BY_KEY.get(key)!.schema.safeParse(joined);
  return read.success && JSON.stringify(read.data) === JSON.stringify(entries) ? joined : JSON.stringify(entries);
}

/** The flat settings a tables entry without a value of its own reads, as the single table does: routes and filters. */
const INHERITED = ['routes', ...FILTER_KEYS.map((field) => `filter.${field}` as const)];

/** `t`'s value of an INHERITED setting as a flag gives it, or undefined where the relay has none. */
function inheritedValue(t: TableMapping, key: (typeof INHERITED)[number]): string | undefined {
  if (key === 'routes') return t.routes === undefined ? undefined : JSON.stringify(t.routes);
  const globs = t.filter?.[key.slice('filter.'.length) as (typeof FILTER_KEYS)[number]];
  return globs === undefined ? undefined : listValue(key, globs);
}

/**
 * The flat settings every table reads, which no tables entry sets, as the relay resolved them: what a NULL payload
 * becomes, and the envelope. Printed at their defaults too: an OUTBOX_RELAY_MAPPING_NULL_PAYLOAD or
 * OUTBOX_RELAY_ENVELOPE_* where the command is pasted would change the records it sends. envelope.source unset as ''
 * (the default /<schema>/<table>, Setting.clearable); printed in the mode none too, which does not read it, so that
 * republish resolves the relay's settings, not merely records alike.
 */
function sharedValues(t: TableMapping): [string, string][] {
  return [
    ['mapping.nullPayload', t.nullPayload],
    ['envelope.mode', t.envelope.mode],
    ['envelope.source', t.envelope.source ?? ''],
  ];
}

/**
 * The single table as the flat settings' flags, each one printed, so that the flags win over whatever the
 * environment or a config file sets where the command runs (a preset only replaces settings at their defaults):
 * a route or filter the relay has none of as '', which unsets it there (Setting.clearable).
 * Not as --tables: an OUTBOX_RELAY_TABLE in that environment, likely beside a single-table relay, would make
 * republish refuse table and tables together.
 */
function tableFlags(t: TableMapping): string {
  // The same resolved columns as a tables entry: each mapping.* key is the entry's mapping member of that name.
  const { table, mapping, topic } = tableEntry(t);
  return flagWords([
    ['table', table],
    ...Object.entries(mapping).map(([field, column]): [string, string] => [`mapping.${field}`, column]),
    ['topic', topic],
    ...INHERITED.map((key): [string, string] => [key, inheritedValue(t, key) ?? '']),
    ...sharedValues(t),
  ]);
}

/**
 * The relay's tables as a printed command's flags (the tables setting as JSON, or the single table's settings),
 * for every command that reads them: republish, and setup, which builds the publication from them and checks the
 * mapping's columns. Empty where the scope has no tables. With --tables, a route or filter that an entry has none
 * of is unset as a flag ('', Setting.clearable): the entry would read the environment's where the command runs;
 * and the settings no entry sets (sharedValues) are flags.
 */
export function tableSettingFlags(scope: RepublishScope): string {
  if (scope.tables === undefined) return '';
  if (!scope.listed) return tableFlags(scope.tables[0]!);
  const unset = INHERITED.filter((key) => scope.tables.some((t) => inheritedValue(t, key) === undefined));
  return ` --tables ${shellWord(JSON.stringify(scope.tables.map(tableEntry)))}${flagWords([...unset.map((key): [string, string] => [key, '']), ...sharedValues(scope.tables[0]!)])}`;
}

/**
 * The republish that re-sends the rows written from `since` (a shell word as given) as the relay streams them:
 * with the relay's publication and its tables (tableSettingFlags).
 */
export function republishCommand(since: string, scope: RepublishScope): string {
  return `outbox-relay republish --since ${since} --publication ${shellWord(scope.publication)}${tableSettingFlags(scope)}`;
}

/** The relay's slot with its publication and tables: what a printed setup or slot command names. */
export type RelayNames = { slot: string } & RepublishScope;
