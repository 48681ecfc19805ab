import { ConfigError, ConfigProblems } from '../config/load.js';
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
const ILLEGAL_CHARACTERS = /[^A-Za-z0-9._-]/g;
const LEGAL_HINT = 'use 1-249 characters from A-Z a-z 0-9 . _ - (not "." or ".." alone)';

/** What makes `template` unusable, each problem on its own: the first one alone took a start per mistake. */
function templateProblems(template: string, setting: string, known: readonly string[] | undefined, found: { emptyPlaceholder: boolean; columns: string[]; literal: string }): ConfigProblems {
  const problems = new ConfigProblems();
  const where = settingRef(setting);
  if (found.emptyPlaceholder) problems.add(new ConfigError(`${setting}: topic template "${template}" has an empty placeholder`, `write \${column_name} in ${where}`));
  const unknown = known ? [...new Set(found.columns.filter((c) => !known.includes(c)))] : [];
  if (unknown.length > 0) {
    const placeholders = known!.map((n) => `\${${n}}`).join(', ');
    const which = unknown.length === 1 ? 'is not one of' : 'are not among';
    problems.add(new ConfigError(`${setting} "${template}" uses ${unknown.map((n) => `\${${n}}`).join(', ')}, which ${which} its placeholders (${placeholders})`, `use only ${placeholders} in ${where}`));
  }
  const fix = `${LEGAL_HINT} outside the \${column} placeholders, in ${where}`;
  const illegal = [...new Set(found.literal.match(ILLEGAL_CHARACTERS))];
  if (illegal.length > 0) problems.add(new ConfigError(`${setting}: "${template}" has ${illegal.map((c) => JSON.stringify(c)).join(', ')}, which a Kafka topic name cannot contain`, fix));
  // What else LEGAL_TOPIC refuses: a length (of the literal part alone, already too long), or "." and "..".
  if (found.literal.length > 249 || template.length === 0 || (found.columns.length === 0 && /^\.{1,2}$/.test(template))) {
    problems.add(new ConfigError(`${setting}: "${template}" can never be a legal Kafka topic name`, fix));
  }
  return problems;
}

/**
 * `setting` names where the template came from: its literal parts are checked when it is compiled (at start),
 * so a template that can never give a legal topic name fails there rather than on the first event. `known`, where
 * the placeholders are not a table's columns (a dead letter's ${topic}, a logical message's fields), lists the
 * ones there are: any other would make every event a poison one. Every problem of the template is reported at
 * once, each naming `setting`.
 */
export function compileTopicTemplate(template: string, setting = 'topic', known?: readonly string[]): TopicTemplate {
  const parts: ({ literal: string } | { column: string })[] = [];
  let emptyPlaceholder = false;
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    if (match.index > last) parts.push({ literal: template.slice(last, match.index) });
    const column = match[1]!.trim();
    if (column) parts.push({ column });
    else emptyPlaceholder = true;
    last = match.index + match[0].length;
  }
  if (last < template.length) parts.push({ literal: template.slice(last) });
  const columns = parts.flatMap((p) => ('column' in p ? [p.column] : []));
  const literal = parts.flatMap((p) => ('literal' in p ? [p.literal] : [])).join('');
  templateProblems(template, setting, known, { emptyPlaceholder, columns, literal }).throwIfAny();
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
      if (!LEGAL_TOPIC.test(topic)) throw new RelayError('TOPIC_INVALID', `${quotedValue(topic)} (from template "${template}") is not a legal Kafka topic name`);
      lastTopic = topic;
      for (let i = 0; i < columns.length; i++) lastValues[i] = values[i];
      return topic;
    },
  };
}

/** Longest part of a value an error quotes (a legal topic name has at most 249 characters). */
export const QUOTED_MAX = 300;

/**
 * A value from an event (its id, an illegal topic name, a timestamp column's text) as an error quotes it: whole
 * up to QUOTED_MAX characters, else its start and length. A row value of megabytes quoted whole made the error as
 * large: in the dead letter's error header it made the dead letter too large to produce, and the relay halted on
 * that (RECORD_TOO_LARGE, with the wrong fix).
 */
export function quotedValue(text: string): string {
  return text.length <= QUOTED_MAX ? `"${text}"` : `"${text.slice(0, QUOTED_MAX)}…" (${text.length} characters)`;
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
  if (!LEGAL_TOPIC.test(topic)) throw new RelayError('TOPIC_INVALID', `${quotedValue(topic)} is not a legal Kafka topic name (${LEGAL_HINT})`);
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
