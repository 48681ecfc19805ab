import { describe, expect, it } from 'vitest';
import { DEAD_LETTER_PLACEHOLDERS, compileTopicTemplate } from '../../src/route/topic-template.js';
import { load, refusal } from '../support/config-load.js';

describe('a topic template: every problem at once, each naming its setting', () => {
  it('an unknown placeholder, an empty one and illegal characters are each reported (before, the first only)', () => {
    const r = refusal(() => compileTopicTemplate('dlq ${table}/${}!${x}', 'delivery.deadLetterTopic', DEAD_LETTER_PLACEHOLDERS));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toBe(
      [
        '3 settings are invalid:',
        '  - delivery.deadLetterTopic: topic template "dlq ${table}/${}!${x}" has an empty placeholder',
        '  - delivery.deadLetterTopic "dlq ${table}/${}!${x}" uses ${table}, ${x}, which are not among its placeholders (${topic})',
        '  - delivery.deadLetterTopic: "dlq ${table}/${}!${x}" has " ", "/", "!", which a Kafka topic name cannot contain',
      ].join('\n'),
    );
    for (const part of ['write ${column_name} in delivery.deadLetterTopic', 'use only ${topic} in delivery.deadLetterTopic', 'outside the ${column} placeholders, in delivery.deadLetterTopic']) expect(r.hint).toContain(part);
  });

  it('characters and a length no topic may have are two problems', () => {
    const r = refusal(() => compileTopicTemplate(`${'a'.repeat(250)} \${x}`, 'topic'));
    expect(r.message).toMatch(/^2 settings are invalid:/);
    expect(r.message).toContain('has " ", which a Kafka topic name cannot contain');
    expect(r.message).toContain('can never be a legal Kafka topic name');
  });

  it('when the config loads, the problems of each template are separate entries beside the other settings’ (topic, routes.0.topic, messages.topic)', () => {
    const r = refusal(() => load({ topic: 'a b/${}', routes: 'A*=x y${}', 'messages.prefixes': 'outbox', 'messages.topic': 'm ${nope}', slot: 'Bad!' }));
    expect(r.message).toMatch(/^7 settings are invalid:/);
    for (const part of [
      '  - topic: topic template "a b/${}" has an empty placeholder',
      '  - topic: "a b/${}" has " ", "/"',
      '  - routes.0.topic: topic template "x y${}" has an empty placeholder',
      '  - routes.0.topic: "x y${}" has " "',
      '  - messages.topic "m ${nope}" uses ${nope}, which is not one of its placeholders',
      '  - messages.topic: "m ${nope}" has " "',
      '  - invalid flag --slot: "Bad!"',
    ]) {
      expect(r.message).toContain(part);
    }
  });
});
