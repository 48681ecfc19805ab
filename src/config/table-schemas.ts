import { z } from 'zod';

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
  identifier: z.ZodType;
  optionalIdentifier: z.ZodType;
  qualifiedTable: z.ZodType;
  text: z.ZodType<string>;
  list: z.ZodType;
}

/** Env and flags carry structured values as JSON text. */
const fromJson = (v: unknown) => {
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
    .object({ type: s.text.optional(), aggregateType: s.text.optional(), topic: s.text }, { error: 'a rule { type and/or aggregateType: <glob>, topic: <template> }, or pattern=topic' })
    .strict()
    .refine((r) => r.type !== undefined || r.aggregateType !== undefined, 'a rule needs type or aggregateType to match on');
  const routes = z.preprocess(parseRouteList, z.array(route).min(1, 'at least one rule'));
  const filter = z
    .object({ includeTypes: s.list.optional(), excludeTypes: s.list.optional(), includeAggregateTypes: s.list.optional(), excludeAggregateTypes: s.list.optional() })
    .strict();
  const mapping = z
    .object({
      id: s.identifier.optional(),
      key: s.identifier.optional(),
      payload: s.identifier.optional(),
      type: s.optionalIdentifier.optional(),
      aggregateType: s.optionalIdentifier.optional(),
      aggregateId: s.optionalIdentifier.optional(),
      headers: s.optionalIdentifier.optional(),
      timestamp: s.optionalIdentifier.optional(),
    })
    .strict();
  const entry = z
    .object({ table: s.qualifiedTable, preset: z.enum(PRESETS).optional(), mapping: mapping.optional(), topic: s.text.optional(), routes: routes.optional(), filter: filter.optional() })
    .strict();
  const tables = z.preprocess(fromJson, z.array(entry, { error: 'a list of tables: [{ table, preset, mapping, topic, routes, filter }]' }).min(1, 'at least one table'));
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
