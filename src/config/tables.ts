import { routeTemplates } from '../route/routing-rules.js';
import { compileTopicTemplate } from '../route/topic-template.js';
import { ConfigError, type ConfigProblems } from './load.js';
import { settingRef } from './settings.js';
import type { EnvelopeConfig, Origin, TableMapping } from './types.js';
import type { EventFilter, PresetName, RouteRule, TableEntry } from './table-schemas.js';

/**
 * The outbox tables the relay reads: one from the flat single-table settings, or each entry of `tables:`
 * layered over them. A preset only replaces values still at their defaults, so explicit settings win.
 */
const MAPPING_KEYS = {
  id: 'mapping.id',
  key: 'mapping.key',
  payload: 'mapping.payload',
  type: 'mapping.type',
  aggregateType: 'mapping.aggregateType',
  aggregateId: 'mapping.aggregateId',
  headers: 'mapping.headers',
  timestamp: 'mapping.timestamp',
} as const;

export const FILTER_KEYS = ['includeTypes', 'excludeTypes', 'includeAggregateTypes', 'excludeAggregateTypes'] as const;

/** Debezium's outbox EventRouter defaults, so a table written for Debezium needs no other setting. */
const PRESET_VALUES: Record<Exclude<PresetName, 'none'>, Record<string, string>> = {
  debezium: {
    'mapping.id': 'id',
    'mapping.key': 'aggregateid',
    'mapping.payload': 'payload',
    'mapping.type': 'type',
    'mapping.aggregateType': 'aggregatetype',
    'mapping.aggregateId': 'aggregateid',
    'mapping.headers': '',
    'mapping.timestamp': '',
    topic: 'outbox.event.${aggregatetype}',
  },
};

type Values = Record<string, unknown>;

/**
 * A table's value of a flat key: its entry's own, else its preset's (replacing only a value still at its default),
 * else the settings'. Read one key at a time, so that a setting that failed its schema skips only the checks that
 * read it (readValid).
 */
type Lookup = (key: string) => unknown;

function layered(values: Values, origins: Record<string, Origin>, preset: PresetName, own: Values = {}): Lookup {
  const replaced = presetReplacements(origins, preset);
  return (key) => {
    if (key in own) return own[key];
    // Read first: an invalid setting is not replaced by the preset's value, it skips the check that reads it.
    const value = values[key];
    return key in replaced ? replaced[key] : value;
  };
}

/**
 * The preset's values of the flat keys it replaces: those still at their defaults (or unset), as explicit
 * settings win. Also what config check and the start-up line show for those keys (loadConfig), so that they show
 * what the relay uses, not the default the preset replaced.
 */
export function presetReplacements(origins: Record<string, Origin>, preset: PresetName): Record<string, string> {
  if (preset === 'none') return {};
  return Object.fromEntries(Object.entries(PRESET_VALUES[preset]).filter(([key]) => (origins[key] ?? 'default') === 'default'));
}

/** An entry's own fields, as the flat keys they override. */
function entryValues(entry: TableEntry): Values {
  const out: Values = { table: entry.table };
  for (const [field, key] of Object.entries(MAPPING_KEYS)) {
    const value = entry.mapping?.[field as keyof typeof MAPPING_KEYS];
    if (value !== undefined) out[key] = value;
  }
  if (entry.topic !== undefined) out.topic = entry.topic;
  if (entry.routes !== undefined) out.routes = entry.routes;
  for (const field of FILTER_KEYS) if (entry.filter?.[field] !== undefined) out[`filter.${field}`] = entry.filter[field];
  return out;
}

/** `public.outbox` or `outbox` (in public) as its schema and table. */
function schemaAndTable(name: string): [string, string] {
  const [schema, table] = name.includes('.') ? name.split('.') : ['public', name];
  return [schema!, table!];
}

/** The table's mapping; each refusal of its checks goes to `problems`, all of them, not the first only. */
function toMapping(v: Lookup, envelope: () => EnvelopeConfig, where: string, problems: ConfigProblems): TableMapping {
  checkColumnsFor(v, envelope, where, problems);
  // Compiled here only for their checks: a topic or route that can never be legal fails at start, naming its
  // setting. The topic and the routes are read apart, so that an invalid one does not skip the other's check.
  const prefix = where === 'table' ? '' : `${where}: `;
  problems.check(() => compileTopicTemplate(v('topic') as string, `${prefix}topic`));
  problems.check(() => {
    for (const { template, setting } of routeTemplates(v('routes') as RouteRule[] | undefined, prefix)) problems.check(() => compileTopicTemplate(template, setting));
  });
  const [schema, table] = schemaAndTable(v('table') as string);
  const optional = (key: string) => (v(key) ? (v(key) as string) : undefined);
  const id = v('mapping.id') as string;
  const filter: EventFilter = {};
  for (const field of FILTER_KEYS) if (v(`filter.${field}`) !== undefined) filter[field] = v(`filter.${field}`) as string[];
  return {
    schema,
    table,
    columns: {
      id,
      key: optional('mapping.key') ?? id,
      payload: v('mapping.payload') as string,
      type: optional('mapping.type'),
      aggregateType: optional('mapping.aggregateType'),
      aggregateId: optional('mapping.aggregateId'),
      headers: optional('mapping.headers'),
      timestamp: optional('mapping.timestamp'),
    },
    topic: v('topic') as string,
    nullPayload: v('mapping.nullPayload') as TableMapping['nullPayload'],
    routes: v('routes') as RouteRule[] | undefined,
    filter,
    envelope: envelope(),
  };
}

/**
 * Rules, filters and the CloudEvents type need their column: say so at start-up, not on the first event. Each
 * need is checked on its own, reading only its settings.
 */
function checkColumnsFor(v: Lookup, envelope: () => EnvelopeConfig, where: string, problems: ConfigProblems): void {
  const needs = (setting: 'mapping.type' | 'mapping.aggregateType', reason: string) => {
    if (!v(setting)) throw new ConfigError(`${where}: ${reason}, but ${setting} is ""`, `set ${settingRef(setting)} to the column that holds it`);
  };
  const routes = () => (v('routes') as RouteRule[] | undefined) ?? [];
  const filtered = (...fields: (typeof FILTER_KEYS)[number][]) => fields.some((field) => v(`filter.${field}`) !== undefined);
  problems.check(() => {
    if (routes().some((r) => r.type !== undefined) || filtered('includeTypes', 'excludeTypes')) needs('mapping.type', 'routes or filters match on the event type');
  });
  problems.check(() => {
    if (routes().some((r) => r.aggregateType !== undefined) || filtered('includeAggregateTypes', 'excludeAggregateTypes')) needs('mapping.aggregateType', 'routes or filters match on the aggregate type');
  });
  problems.check(() => {
    if (envelope().mode === 'cloudevents') needs('mapping.type', 'envelope.mode cloudevents needs the event type (ce_type)');
  });
}

/** The mappings of the tables; each refusal of their checks goes to `problems`. */
export function tableMappings(values: Values, origins: Record<string, Origin>, envelope: () => EnvelopeConfig, problems: ConfigProblems): TableMapping[] {
  const preset = values.preset as PresetName;
  const entries = values.tables as TableEntry[] | undefined;
  if (entries === undefined) return [toMapping(layered(values, origins, preset), envelope, 'table', problems)];
  problems.check(() => {
    // Read through `values`, so that an invalid table is left to its own refusal.
    if (values.table !== undefined && origins.table !== 'default') {
      throw new ConfigError(`both table (${origins.table}) and tables (${origins.tables}) are set`, 'list every table under tables, or use table alone for a single table');
    }
  });
  const seen = new Set<string>();
  const mappings: TableMapping[] = [];
  entries.forEach((entry, i) => {
    const mapping = problems.check(() => toMapping(layered(values, origins, entry.preset ?? preset, entryValues(entry)), envelope, `tables.${i} (${entry.table}, from ${origins.tables})`, problems));
    if (mapping) mappings.push(mapping);
    const name = schemaAndTable(entry.table).join('.');
    if (seen.has(name)) problems.add(new ConfigError(`tables.${i}: ${name} is listed twice (from ${origins.tables})`, 'give each table one entry'));
    seen.add(name);
  });
  return mappings;
}
