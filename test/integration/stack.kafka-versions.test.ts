import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaBroker } from '../../stack/index.js';
import { createTopic, kafkaClient, readTopic, stack, uniqueName } from '../support/services.js';

// The shared broker runs the default 4.x line; this proves the 3.x line (KAFKA_VERSION=3.9.1) works too.
const other = process.env.KAFKA_VERSION === '3.9.1' ? '4.4.0' : '3.9.1';

describe.skipIf(!stack().owned.kafka)(`Kafka ${other} from Maven Central`, () => {
  const broker = new KafkaBroker({ name: uniqueName('v'), version: other });
  beforeAll(async () => {
    broker.destroy();
    await broker.start();
  });
  afterAll(async () => {
    await broker.stop();
    broker.destroy();
  });

  it('starts and round-trips a record with key and headers', async () => {
    const topic = uniqueName('versions');
    await createTopic(topic, 1, broker.brokers);
    const producer = kafkaClient(broker.brokers).producer({ idempotent: true });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'v', headers: { h: '1' } }] });
    await producer.disconnect();
    const records = await readTopic(topic, { expected: 1, settleMs: 0, brokers: broker.brokers });
    expect(records.map((r) => [r.key, r.value?.toString(), r.headers.h])).toEqual([['k', 'v', '1']]);
  });
});
