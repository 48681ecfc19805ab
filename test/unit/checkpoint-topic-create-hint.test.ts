import { describe, expect, it } from 'vitest';
import type { CheckpointClient } from '../../src/checkpoint/checkpoint-client.js';
import { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import { RelayError } from '../../src/errors.js';
import { printedAclCommands } from '../support/printed-command.js';

const storeFailing = (err: Error) => new KafkaCheckpointStore({ createTopic: async () => Promise.reject(err) } as unknown as CheckpointClient, 'checkpoints', ['k:9092']);

describe('KafkaCheckpointStore.ensureTopic, failed', () => {
  // Before: exactly-once (and replay) with every broker down said "create it yourself: kafka-topics.sh --create …
  // or grant the relay CREATE on it" (found by trying the CLI's exits with kafka.brokers 127.0.0.1:1).
  it('with no broker answering, the fix is the brokers, not the topic or a grant', async () => {
    for (const message of ['Local: Broker transport failure', 'Local: Timed out', 'KafkaJSConnectionError: Connection error: connect ECONNREFUSED 127.0.0.1:1']) {
      const failed = await storeFailing(new Error(message)).ensureTopic().catch((err: unknown) => err);
      expect(failed).toMatchObject({ code: 'CHECKPOINT_FAILED', retriable: true, hint: expect.stringMatching(/^Kafka did not answer: check that the brokers in kafka.brokers are up and reachable/) });
    }
  });

  it('refused by Kafka, the fix is to create the topic or grant CREATE', async () => {
    const failed = await storeFailing(new Error('Not authorized to access topics: [Topic authorization failed]')).ensureTopic().catch((err: unknown) => err);
    expect(failed).toMatchObject({ code: 'CHECKPOINT_FAILED', hint: expect.stringMatching(/^create it yourself: kafka-topics.sh --bootstrap-server k:9092 --create --topic checkpoints .* or grant the relay CREATE on it$/) });
  });

  // Before: kafka-topics.sh and kafka-configs.sh without --bootstrap-server, which they require: not runnable as printed.
  it('every command a checkpoint fix prints names the brokers of kafka.brokers', () => {
    const store = new KafkaCheckpointStore({} as CheckpointClient, 'checkpoints', ['kafka-0:9092', 'kafka-1:9092']);
    const fixes = (['TOPIC_NOT_FOUND', 'RECORD_TOO_LARGE', 'RECORD_INVALID'] as const).map((code) => store.writeFailure(new RelayError(code, 'refused (fake)')).hint ?? '');
    for (const fix of fixes) expect(fix).toMatch(/kafka-(?:topics|configs)\.sh --bootstrap-server kafka-0:9092,kafka-1:9092 /);
  });

  // Before: "kafka-acls.sh --topic checkpoints", without the brokers and the grant: not a command to run.
  it("a refused write's fix grants WRITE and DESCRIBE on the checkpoint topic with a kafka-acls.sh that runs as printed", () => {
    const store = new KafkaCheckpointStore({} as CheckpointClient, 'checkpoints', ['kafka-0:9092', 'kafka-1:9092']);
    const fix = store.writeFailure(new RelayError('KAFKA_AUTH', 'Kafka refused access: Broker: Topic authorization failed (fake)', { retriable: true, details: { kafkaError: 29 } })).hint ?? '';
    expect(fix).toMatch(/^grant the relay's principal WRITE and DESCRIBE on the topic checkpoints \(/);
    expect(printedAclCommands(fix)).toEqual([
      ['kafka-acls.sh', '--bootstrap-server', 'kafka-0:9092,kafka-1:9092', '--add', '--allow-principal', '<principal>', '--operation', 'Write', '--operation', 'Describe', '--topic', 'checkpoints'],
    ]);
  });
});
