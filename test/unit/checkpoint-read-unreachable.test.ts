import { describe, expect, it } from 'vitest';
import type { CheckpointClient } from '../../src/checkpoint/checkpoint-client.js';
import { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import type { RelayError } from '../../src/errors.js';

/** A checkpoint client whose read fails with `err`, as the Kafka client threw it. */
const failingRead = (err: Error) =>
  new KafkaCheckpointStore({ readAll: async () => Promise.reject(err) } as unknown as CheckpointClient, 'checkpoints', ['k:9092']).read('slot_a').then(
    () => expect.unreachable('the read succeeded'),
    (failed: unknown) => failed as RelayError,
  );

describe('checkpoint read that fails (what status shows as "checkpoint: not readable")', () => {
  it('brokers that do not answer (librdkafka, kafkajs): the fix says Kafka did not answer, not to grant READ and group ACLs', async () => {
    for (const message of ['Local: Broker transport failure', 'Local: Timed out', 'Connection error: connect ECONNREFUSED 127.0.0.1:9092']) {
      const failed = await failingRead(new Error(message));
      expect(failed).toMatchObject({ code: 'CHECKPOINT_FAILED', message: `cannot read the checkpoint topic "checkpoints": ${message}` });
      expect(failed.hint).toBe('Kafka did not answer: check that the brokers in kafka.brokers are up and reachable from here, and the TLS/SASL settings');
    }
  });

  it('a refusal keeps the fix that names the grants', async () => {
    const failed = await failingRead(new Error('Broker: Group authorization failed'));
    expect(failed.hint).toContain('DESCRIBE on group outbox-relay-checkpoint-reader');
  });
});
