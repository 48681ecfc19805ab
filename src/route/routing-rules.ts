import type { TableMapping } from '../config/types.js';
import { compileGlob } from './glob.js';
import { compileTopicTemplate, type TopicTemplate } from './topic-template.js';

/**
 * The topic of a row: the first routing rule whose globs match its event type / aggregate type, else the
 * table's topic template. It has the TopicTemplate shape, so the row mapper does not care which it got.
 */
export function compileTopicRouting(mapping: Pick<TableMapping, 'topic' | 'routes' | 'columns'>, where = ''): TopicTemplate {
  const [fallback, ...routeTopics] = topicTemplates(mapping, where).map(({ template, setting }) => compileTopicTemplate(template, setting)) as [TopicTemplate, ...TopicTemplate[]];
  if (!mapping.routes?.length) return fallback;
  const typeColumn = mapping.columns.type;
  const aggregateTypeColumn = mapping.columns.aggregateType;
  const rules = mapping.routes.map((rule, i) => ({
    type: rule.type === undefined ? undefined : compileGlob(rule.type),
    aggregateType: rule.aggregateType === undefined ? undefined : compileGlob(rule.aggregateType),
    topic: routeTopics[i]!,
  }));
  const columns = new Set([...fallback.columns, ...rules.flatMap((r) => r.topic.columns)]);
  if (typeColumn) columns.add(typeColumn);
  if (aggregateTypeColumn) columns.add(aggregateTypeColumn);
  return {
    columns: [...columns],
    render(valueOf) {
      const type = typeColumn ? valueOf(typeColumn) : null;
      const aggregateType = aggregateTypeColumn ? valueOf(aggregateTypeColumn) : null;
      for (const rule of rules) {
        if (rule.type && (type === null || !rule.type(type))) continue;
        if (rule.aggregateType && (aggregateType === null || !rule.aggregateType(aggregateType))) continue;
        return rule.topic.render(valueOf);
      }
      return fallback.render(valueOf);
    },
  };
}

/** A table's topic templates, each with the setting a refusal names: its topic, then each route's, in order. */
export function topicTemplates(mapping: Pick<TableMapping, 'topic' | 'routes'>, where = ''): { template: string; setting: string }[] {
  return [{ template: mapping.topic, setting: `${where}topic` }, ...routeTemplates(mapping.routes, where)];
}

/** The routes' topic templates, each with the setting a refusal names (loadConfig checks them apart from the topic). */
export function routeTemplates(routes: TableMapping['routes'], where = ''): { template: string; setting: string }[] {
  return (routes ?? []).map((rule, i) => ({ template: rule.topic, setting: `${where}routes.${i}.topic` }));
}
