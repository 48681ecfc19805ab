import * as z from 'zod/mini';
import { preprocess } from './zod.js';

/**
 * Schemas of the structured source settings: routing rules, event filters and the `tables:` list. They take the
 * scalar schemas of settings.ts as arguments, because settings.ts imports this module (no import cycle).
 */
export const PRESETS = ['none', 'debezium'] as const;
export type PresetName = (typeof PRESETS)[number];

export interface RouteRule {
  /** Glob (`*` matches any run of characters) on the event type. */
  type?: string;
  /** Glob on the aggregate type. */
  aggregateType?: string;
  /** Topic name or template (`${column}`). */
  topic: string;
}

export interface EventFilter {
  includeTypes?: string[];
  excludeTypes?: string[];
  includeAggregateTypes?: string[];
  excludeAggregateTypes?: string[];
}

export interface ScalarSchemas {
  identifier: z.ZodMiniType;
  optionalIdentifier: z.ZodMiniType;
  qualifiedTable: z.ZodMiniType;
  text: z.ZodMiniType<string>;
  list: z.ZodMiniType;
}

/** Env and flags carry structured values as JSON text. */
export const fromJson = (v: unknown) => {
  if (typeof v !== 'string' || !/^\s*[[{]/.test(v)) return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
};

/** `Order*=orders,Payment*=payments` (flags, env) or a list of `{ type, aggregateType, topic }` (file, JSON). */
function parseRouteList(v: unknown): unknown {
  const parsed = fromJson(v);
  if (typeof parsed !== 'string') return parsed;
  return parsed
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((rule) => {
      const at = rule.lastIndexOf('=');
      return at > 0 ? { type: rule.slice(0, at).trim(), topic: rule.slice(at + 1).trim() } : rule;
    });
}

export function tableSchemas(s: ScalarSchemas) {
  const route = z
    .strictObject({ type: z.optional(s.text), aggregateType: z.optional(s.text), topic: s.text }, { error: 'a rule { type and/or aggregateType: <glob>, topic: <template> }, or pattern=topic' })
    .check(z.refine((r) => r.type !== undefined || r.aggregateType !== undefined, 'a rule needs type or aggregateType to match on'));
  const routes = preprocess(parseRouteList, z.array(route).check(z.minLength(1, 'at least one rule')));
  const filter = z.strictObject({ includeTypes: z.optional(s.list), excludeTypes: z.optional(s.list), includeAggregateTypes: z.optional(s.list), excludeAggregateTypes: z.optional(s.list) });
  const mapping = z.strictObject({
    id: z.optional(s.identifier),
    key: z.optional(s.identifier),
    payload: z.optional(s.identifier),
    type: z.optional(s.optionalIdentifier),
    aggregateType: z.optional(s.optionalIdentifier),
    aggregateId: z.optional(s.optionalIdentifier),
    headers: z.optional(s.optionalIdentifier),
    timestamp: z.optional(s.optionalIdentifier),
  });
  const entry = z.strictObject({ table: s.qualifiedTable, preset: z.optional(z.enum(PRESETS)), mapping: z.optional(mapping), topic: z.optional(s.text), routes: z.optional(routes), filter: z.optional(filter) });
  const tables = preprocess(fromJson, z.array(entry, { error: 'a list of tables: [{ table, preset, mapping, topic, routes, filter }]' }).check(z.minLength(1, 'at least one table')));
  return { routes, tables };
}

export type TableEntry = {
  table: string;
  preset?: PresetName;
  mapping?: Partial<Record<'id' | 'key' | 'payload' | 'type' | 'aggregateType' | 'aggregateId' | 'headers' | 'timestamp', string>>;
  topic?: string;
  routes?: RouteRule[];
  filter?: EventFilter;
};
