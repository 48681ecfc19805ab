import { RelayError } from '../errors.js';

/** `outbox.${aggregate_type}` → literal parts and column names, compiled once per relation. */
export interface TopicTemplate {
  readonly columns: string[];
  render(valueOf: (column: string) => string | null): string;
}

const PLACEHOLDER = /\$\{([^}]*)\}/g;
const LEGAL_TOPIC = /^[A-Za-z0-9._-]{1,249}$/;
const ILLEGAL_CHARACTER = /[^A-Za-z0-9._-]/;
const LEGAL_HINT = 'use 1-249 characters from A-Z a-z 0-9 . _ -';

/**
 * `setting` names where the template came from: its literal parts are checked when it is compiled (at start),
 * so a template that can never give a legal topic name fails there rather than on the first event.
 */
export function compileTopicTemplate(template: string, setting = 'topic'): TopicTemplate {
  const parts: ({ literal: string } | { column: string })[] = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    if (match.index > last) parts.push({ literal: template.slice(last, match.index) });
    const column = match[1]!.trim();
    if (!column) throw new RelayError('CONFIG_INVALID', `${setting}: topic template "${template}" has an empty placeholder`, { hint: 'write ${column_name}' });
    parts.push({ column });
    last = match.index + match[0].length;
  }
  if (last < template.length) parts.push({ literal: template.slice(last) });
  const columns = parts.flatMap((p) => ('column' in p ? [p.column] : []));
  const literal = parts.flatMap((p) => ('literal' in p ? [p.literal] : [])).join('');
  const illegal = ILLEGAL_CHARACTER.exec(literal)?.[0];
  if (illegal !== undefined || literal.length > 249 || template.length === 0) {
    const why = illegal !== undefined ? `has ${JSON.stringify(illegal)}, which a Kafka topic name cannot contain` : 'can never be a legal Kafka topic name';
    throw new RelayError('CONFIG_INVALID', `${setting}: "${template}" ${why}`, { hint: `${LEGAL_HINT} outside the \${column} placeholders` });
  }
  // The last legal name: consecutive events mostly go to the same topic, which then skips the check and is
  // handed on as one flat string instead of a fresh concatenation.
  let lastTopic: string | undefined;
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
      if (topic === lastTopic) return lastTopic;
      if (!LEGAL_TOPIC.test(topic)) throw new RelayError('TOPIC_INVALID', `"${topic}" (from template "${template}") is not a legal Kafka topic name`);
      lastTopic = topic;
      return topic;
    },
  };
}
