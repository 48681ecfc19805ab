import { settingRef } from '../config/settings.js';
import { PAST_THE_EVENT, RelayError } from '../errors.js';

/** `outbox.${aggregate_type}` → literal parts and column names, compiled once per relation. */
export interface TopicTemplate {
  readonly columns: string[];
  render(valueOf: (column: string) => string | null): string;
}

const PLACEHOLDER = /\$\{([^}]*)\}/g;
// Kafka also refuses "." and "..", which the characters alone allow.
const LEGAL_TOPIC = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,249}$/;
const ILLEGAL_CHARACTER = /[^A-Za-z0-9._-]/;
const LEGAL_HINT = 'use 1-249 characters from A-Z a-z 0-9 . _ - (not "." or ".." alone)';

/**
 * `setting` names where the template came from: its literal parts are checked when it is compiled (at start),
 * so a template that can never give a legal topic name fails there rather than on the first event. `known`, where
 * the placeholders are not a table's columns (a dead letter's ${topic}, a logical message's fields), lists the
 * ones there are: any other would make every event a poison one.
 */
export function compileTopicTemplate(template: string, setting = 'topic', known?: readonly string[]): TopicTemplate {
  const parts: ({ literal: string } | { column: string })[] = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    if (match.index > last) parts.push({ literal: template.slice(last, match.index) });
    const column = match[1]!.trim();
    if (!column) throw new RelayError('CONFIG_INVALID', `${setting}: topic template "${template}" has an empty placeholder`, { hint: `write \${column_name} in ${settingRef(setting)}` });
    parts.push({ column });
    last = match.index + match[0].length;
  }
  if (last < template.length) parts.push({ literal: template.slice(last) });
  const columns = parts.flatMap((p) => ('column' in p ? [p.column] : []));
  const unknown = known && columns.find((c) => !known.includes(c));
  if (unknown !== undefined) {
    const placeholders = known!.map((n) => `\${${n}}`).join(', ');
    throw new RelayError('CONFIG_INVALID', `${setting} "${template}" uses \${${unknown}}, which is not one of its placeholders (${placeholders})`, {
      hint: `use only ${placeholders} in ${settingRef(setting)}`,
    });
  }
  const literal = parts.flatMap((p) => ('literal' in p ? [p.literal] : [])).join('');
  const illegal = ILLEGAL_CHARACTER.exec(literal)?.[0];
  if (illegal !== undefined || literal.length > 249 || template.length === 0 || (columns.length === 0 && !LEGAL_TOPIC.test(template))) {
    const why = illegal !== undefined ? `has ${JSON.stringify(illegal)}, which a Kafka topic name cannot contain` : 'can never be a legal Kafka topic name';
    throw new RelayError('CONFIG_INVALID', `${setting}: "${template}" ${why}`, { hint: `${LEGAL_HINT} outside the \${column} placeholders, in ${settingRef(setting)}` });
  }
  // The last legal name and the column values it was made of: consecutive events mostly go to the same topic,
  // which then costs neither a concatenation nor the check, and is handed on as the one flat string.
  let lastTopic: string | undefined;
  const lastValues: (string | undefined)[] = columns.map(() => undefined);
  const values: string[] = columns.map(() => '');
  return {
    columns,
    render(valueOf) {
      let same = lastTopic !== undefined;
      for (let c = 0; c < columns.length; c++) {
        const value = valueOf(columns[c]!);
        if (value === null) throw new RelayError('RECORD_REQUIRED_NULL', `column "${columns[c]}" used in the topic template is NULL`);
        if (value !== lastValues[c]) same = false;
        values[c] = value;
      }
      if (same) return lastTopic!;
      let topic = '';
      let c = 0;
      for (const part of parts) topic += 'literal' in part ? part.literal : values[c++];
      if (!LEGAL_TOPIC.test(topic)) throw new RelayError('TOPIC_INVALID', `"${topic}" (from template "${template}") is not a legal Kafka topic name`);
      lastTopic = topic;
      for (let i = 0; i < columns.length; i++) lastValues[i] = values[i];
      return topic;
    },
  };
}

/** The placeholders of delivery.deadLetterTopic: the topic the event was meant for. */
export const DEAD_LETTER_PLACEHOLDERS = ['topic'] as const;

/** `name` as a setting gives it (checkpoint.topic): a legal Kafka topic name, or why not and the fix. */
export function topicNameProblem(name: string, setting: string): { problem: string; fix: string } | undefined {
  if (LEGAL_TOPIC.test(name)) return undefined;
  return { problem: `${setting} "${name}" is not a legal Kafka topic name`, fix: `${LEGAL_HINT}, in ${settingRef(setting)}` };
}

/** A topic name given as is (a logical message's own "topic"): checked as a rendered template is, before Kafka sees it. */
export function checkTopicName(topic: string): string {
  if (!LEGAL_TOPIC.test(topic)) throw new RelayError('TOPIC_INVALID', `"${topic}" is not a legal Kafka topic name (${LEGAL_HINT})`);
  return topic;
}

/**
 * An event routed to the relay's checkpoint topic: a record there under the slot's name would be read as the
 * position to resume from at the next start, and a restart before the relay's next checkpoint would skip or
 * re-send everything between. Row data and logical messages name topics, so this is refused like an illegal name.
 */
export function checkpointTopicRefused(topic: string): RelayError {
  return new RelayError('TOPIC_INVALID', `"${topic}" is the relay's checkpoint topic (checkpoint.topic): no event may be produced there, a record in it could move where a restart resumes`, {
    hint: `route it to another topic (its row, the topic template or routing rules, or the message's "topic"): the checkpoint topic takes only the relay's own checkpoints; ${PAST_THE_EVENT}`,
  });
}
