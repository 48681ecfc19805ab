import { RelayError } from '../errors.js';

/** `outbox.${aggregate_type}` → literal parts and column names, compiled once per relation. */
export interface TopicTemplate {
  readonly columns: string[];
  render(valueOf: (column: string) => string | null): string;
}

const PLACEHOLDER = /\$\{([^}]*)\}/g;
const LEGAL_TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

export function compileTopicTemplate(template: string): TopicTemplate {
  const parts: ({ literal: string } | { column: string })[] = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    if (match.index > last) parts.push({ literal: template.slice(last, match.index) });
    const column = match[1]!.trim();
    if (!column) throw new RelayError('CONFIG_INVALID', `topic template "${template}" has an empty placeholder`, { hint: 'write ${column_name}' });
    parts.push({ column });
    last = match.index + match[0].length;
  }
  if (last < template.length) parts.push({ literal: template.slice(last) });
  const columns = parts.flatMap((p) => ('column' in p ? [p.column] : []));
  if (columns.length === 0 && !LEGAL_TOPIC.test(template)) {
    throw new RelayError('CONFIG_INVALID', `"${template}" is not a legal Kafka topic name`, { hint: 'use 1-249 characters from A-Z a-z 0-9 . _ -' });
  }
  return {
    columns,
    render(valueOf) {
      let topic = '';
      for (const part of parts) {
        if ('literal' in part) topic += part.literal;
        else {
          const value = valueOf(part.column);
          if (value === null) throw new RelayError('RECORD_REQUIRED_NULL', `column "${part.column}" used in the topic template is NULL`);
          topic += value;
        }
      }
      if (!LEGAL_TOPIC.test(topic)) throw new RelayError('TOPIC_INVALID', `"${topic}" (from template "${template}") is not a legal Kafka topic name`);
      return topic;
    },
  };
}
