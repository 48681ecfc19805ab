import type { TableMapping } from '../config/types.js';
import { compileTopicRouting, topicTemplates } from './routing-rules.js';
import { compileTopicTemplate } from './topic-template.js';

/** A column a mapping reads: the setting that names it, and how to point that setting at another column. */
export interface MappedColumn {
  column: string;
  setting: string;
  /** The change of setting that reads `other` instead ("set mapping.payload to …"). */
  instead: (other: string) => string;
}

const FIELDS = ['id', 'key', 'payload', 'type', 'aggregateType', 'aggregateId', 'headers', 'timestamp'] as const;

/**
 * Every column of the table the mapping reads, in the order the row mapper looks for them: the mapping's own
 * columns, then the placeholders of its topic templates that name no mapped column. What the row mapper refuses a
 * relation without, and what the pre-flight and setup check the table and its publication for.
 */
export function mappedColumns(mapping: TableMapping): MappedColumn[] {
  const named: MappedColumn[] = FIELDS.flatMap((field) => {
    const column = mapping.columns[field];
    return column === undefined ? [] : [{ column, setting: `mapping.${field}`, instead: (other: string) => `set mapping.${field} to ${other}` }];
  });
  const placeholders = compileTopicRouting(mapping)
    .columns.filter((column) => !named.some((m) => m.column === column))
    .map((column) => {
      const settings = templateSettings(mapping, column).join(' and ');
      return { column, setting: `\${${column}} in ${settings}`, instead: (other: string) => `write ${other} in place of \${${column}} in ${settings}` };
    });
  return [...named, ...placeholders];
}

/** Those of `columns` (a table's) that no mapping.* setting names: what a setting could be pointed at instead. */
export function unmappedColumns(mapping: TableMapping, columns: string[]): string[] {
  const mapped = new Set(Object.values(mapping.columns));
  return columns.filter((name) => !mapped.has(name));
}

/** The settings (topic, routes.N.topic) whose template has the placeholder `${column}`. */
function templateSettings(mapping: TableMapping, column: string): string[] {
  return topicTemplates(mapping)
    .filter(({ template, setting }) => compileTopicTemplate(template, setting).columns.includes(column))
    .map(({ setting }) => setting);
}
