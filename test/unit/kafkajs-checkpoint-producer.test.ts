import type { Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { KafkaJsCheckpointClient } from '../../src/checkpoint/kafkajs-checkpoint-client.js';
import type { RelayError } from '../../src/errors.js';

/**
 * kafkajs 2.2.4's producer as far as the checkpoint client uses it: a connect that a disconnect meets is not
 * cancelled, and once it ends the producer is connected (producer/index.js).
 */
class FakeKafkaJsProducer {
  connected = false;
  readonly sent: string[] = [];
  /** Set: a connect answers only once it resolves (a broker slow to answer). */
  connectGate: Promise<void> | undefined;
  async connect() {
    await this.connectGate;
    this.connected = true;
  }
  async send({ messages }: { messages: { key: string }[] }) {
    if (!this.connected) throw new Error('The producer is disconnected');
    this.sent.push(messages[0]!.key);
  }
  async disconnect() {
    this.connected = false;
  }
}

function fakeKafka(producer: FakeKafkaJsProducer): Kafka {
  return { producer: () => producer } as unknown as Kafka;
}

describe('kafkajs checkpoint producer closed while it connects', () => {
  it('the producer, connected after close(), is disconnected and writes nothing', async () => {
    const producer = new FakeKafkaJsProducer();
    let answer!: () => void;
    producer.connectGate = new Promise((resolve) => (answer = resolve));
    const checkpoints = new KafkaJsCheckpointClient(fakeKafka(producer)).producer();
    const sending = checkpoints.send('checkpoints', { key: 'slot_a', value: Buffer.from('{}') }).then(
      () => 'written',
      (err: RelayError) => err.code,
    );
    await new Promise((resolve) => setImmediate(resolve));
    await checkpoints.close();
    answer();
    // Before: connected once its connect ended, with nobody to close it, and the checkpoint written after close().
    expect(await sending).toBe('KAFKA_UNAVAILABLE');
    expect({ connected: producer.connected, sent: producer.sent }).toEqual({ connected: false, sent: [] });
  });
});
