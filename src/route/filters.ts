import type { TableMapping } from '../config/types.js';
import { compileGlobList } from './glob.js';

/** Decides from a row's column values whether it is relayed; skipped rows still count as delivered for the slot. */
export type EventFilterFn = (valueOf: (column: string) => string | null) => boolean;

type Check = (value: string | null) => boolean;

/** include: the value must match one glob (NULL never does); exclude: it must match none. */
function check(include: string[] | undefined, exclude: string[] | undefined): Check | undefined {
  if (!include && !exclude) return undefined;
  const included = include ? compileGlobList(include) : undefined;
  const excluded = exclude ? compileGlobList(exclude) : undefined;
  return (value) => {
    if (included && (value === null || !included(value))) return false;
    return !(excluded && value !== null && excluded(value));
  };
}

/** Undefined when the table has no filter, so unfiltered rows cost nothing. */
export function compileEventFilter(mapping: Pick<TableMapping, 'filter' | 'columns'>): EventFilterFn | undefined {
  const f = mapping.filter ?? {};
  const checks: [string, Check][] = [];
  const byType = check(f.includeTypes, f.excludeTypes);
  const byAggregateType = check(f.includeAggregateTypes, f.excludeAggregateTypes);
  if (byType && mapping.columns.type) checks.push([mapping.columns.type, byType]);
  if (byAggregateType && mapping.columns.aggregateType) checks.push([mapping.columns.aggregateType, byAggregateType]);
  if (checks.length === 0) return undefined;
  return (valueOf) => checks.every(([column, test]) => test(valueOf(column)));
}
