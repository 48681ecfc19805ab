import { topicTemplates } from '../route/routing-rules.js';
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

const FILTER_KEYS = ['includeTypes', 'excludeTypes', 'includeAggregateTypes', 'excludeAggregateTypes'] as const;

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

function withPreset(values: Values, origins: Record<string, Origin>, preset: PresetName): Values {
  if (preset === 'none') return { ...values };
  const out = { ...values };
  for (const [key, value] of Object.entries(PRESET_VALUES[preset])) if ((origins[key] ?? 'default') === 'default') out[key] = value;
  return out;
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

/** The table's mapping; each refusal of its checks goes to `problems`, all of them, not the first only. */
function toMapping(v: Values, envelope: EnvelopeConfig, where: string, problems: ConfigProblems): TableMapping {
  const name = v.table as string;
  const [schema, table] = name.includes('.') ? name.split('.') : ['public', name];
  const optional = (key: string) => (v[key] ? (v[key] as string) : undefined);
  const id = v['mapping.id'] as string;
  const filter: EventFilter = {};
  for (const field of FILTER_KEYS) if (v[`filter.${field}`] !== undefined) filter[field] = v[`filter.${field}`] as string[];
  const mapping: TableMapping = {
    schema: schema!,
    table: table!,
    columns: {
      id,
      key: optional('mapping.key') ?? id,
      payload: v['mapping.payload'] as string,
      type: optional('mapping.type'),
      aggregateType: optional('mapping.aggregateType'),
      aggregateId: optional('mapping.aggregateId'),
      headers: optional('mapping.headers'),
      timestamp: optional('mapping.timestamp'),
    },
    topic: v.topic as string,
    nullPayload: v['mapping.nullPayload'] as TableMapping['nullPayload'],
    routes: v.routes as RouteRule[] | undefined,
    filter,
    envelope,
  };
  checkColumnsFor(mapping, where, problems);
  // Compiled here only for their checks: a topic or route that can never be legal fails at start, naming its setting.
  for (const { template, setting } of topicTemplates(mapping, where === 'table' ? '' : `${where}: `)) problems.check(() => compileTopicTemplate(template, setting));
  return mapping;
}

/** Rules, filters and the CloudEvents type need their column: say so at start-up, not on the first event. */
function checkColumnsFor(mapping: TableMapping, where: string, problems: ConfigProblems): void {
  const { routes = [], filter = {}, columns } = mapping;
  const needs = (column: string | undefined, setting: string, reason: string) => {
    if (column === undefined) problems.add(new ConfigError(`${where}: ${reason}, but ${setting} is ""`, `set ${settingRef(setting)} to the column that holds it`));
  };
  if (routes.some((r) => r.type !== undefined) || filter.includeTypes || filter.excludeTypes) needs(columns.type, 'mapping.type', 'routes or filters match on the event type');
  if (routes.some((r) => r.aggregateType !== undefined) || filter.includeAggregateTypes || filter.excludeAggregateTypes) {
    needs(columns.aggregateType, 'mapping.aggregateType', 'routes or filters match on the aggregate type');
  }
  if (mapping.envelope.mode === 'cloudevents') needs(columns.type, 'mapping.type', 'envelope.mode cloudevents needs the event type (ce_type)');
}

/** The mappings of the tables; each refusal of their checks goes to `problems`. */
export function tableMappings(values: Values, origins: Record<string, Origin>, envelope: EnvelopeConfig, problems: ConfigProblems): TableMapping[] {
  const preset = values.preset as PresetName;
  const entries = values.tables as TableEntry[] | undefined;
  if (entries === undefined) return [toMapping(withPreset(values, origins, preset), envelope, 'table', problems)];
  if (origins.table !== 'default') {
    problems.add(new ConfigError(`both table (${origins.table}) and tables (${origins.tables}) are set`, 'list every table under tables, or use table alone for a single table'));
  }
  const seen = new Set<string>();
  const mappings: TableMapping[] = [];
  entries.forEach((entry, i) => {
    const mapping = toMapping({ ...withPreset(values, origins, entry.preset ?? preset), ...entryValues(entry) }, envelope, `tables.${i} (${entry.table}, from ${origins.tables})`, problems);
    const name = `${mapping.schema}.${mapping.table}`;
    if (seen.has(name)) problems.add(new ConfigError(`tables.${i}: ${name} is listed twice (from ${origins.tables})`, 'give each table one entry'));
    seen.add(name);
    mappings.push(mapping);
  });
  return mappings;
}
