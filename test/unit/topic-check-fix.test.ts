import { describe, expect, it } from 'vitest';
import { TopicCheck } from '../../src/sink/topic-check.js';

const unknownTopic = new Error('This server does not host this topic-partition');

describe('TopicCheck, a topic that does not exist', () => {
  // Before: the fix said `kafka-topics.sh --create --topic outbox.order`, which kafka-topics.sh refuses as printed
  // ("--bootstrap-server must be specified", Kafka 4.4): it has no default broker.
  it("fails TOPIC_NOT_FOUND with a kafka-topics.sh command that names the relay's brokers, runnable as printed", async () => {
    const check = new TopicCheck(async () => Promise.reject(unknownTopic), (err) => err === unknownTopic, ['kafka-1:9092', 'kafka-2:9092']);
    const failed = await check.check(['outbox.order']).catch((err: unknown) => err);
    expect(failed).toMatchObject({ code: 'TOPIC_NOT_FOUND', details: { topic: 'outbox.order' } });
    const command = /\((kafka-topics\.sh [^)]*)\)/.exec((failed as { hint: string }).hint)?.[1];
    expect(command?.split(' ')).toEqual(['kafka-topics.sh', '--bootstrap-server', 'kafka-1:9092,kafka-2:9092', '--create', '--topic', 'outbox.order']);
  });
});
