import type { KafkaJS } from '@confluentinc/kafka-javascript';
import { describe, expect, it } from 'vitest';
import { rdKafkaTopicCheck } from '../../src/sink/rdkafka-client.js';

/** The admin client as far as the topic check uses it: records what each metadata request asked for. */
function fakeAdmin(answer: (topic: string) => Promise<unknown>) {
  const requests: { topics?: string[]; timeout?: number }[] = [];
  const admin = {
    fetchTopicMetadata(options: { topics?: string[]; timeout?: number }) {
      requests.push(options);
      return answer(options.topics![0]!);
    },
  } as unknown as KafkaJS.Admin;
  return { admin, requests };
}

describe('the librdkafka sinks’ topic check', () => {
  it('bounds each metadata request by kafka.requestTimeout, not the binding’s own 5 s', async () => {
    const { admin, requests } = fakeAdmin(async (topic) => [{ name: topic, partitions: [{ partitionId: 0, leader: 1 }] }]);
    const check = rdKafkaTopicCheck(() => admin, 45_000);
    await check.check(['orders']);
    await check.leaders(['orders']);
    expect(requests).toEqual([
      { topics: ['orders'], timeout: 45_000 },
      { topics: ['orders'], timeout: 45_000 },
    ]);
  });

  it('names a topic the broker does not know as TOPIC_NOT_FOUND', async () => {
    const unknown = Object.assign(new Error('Broker: Unknown topic or partition'), { code: 3 });
    const { admin } = fakeAdmin(() => Promise.reject(unknown));
    await expect(rdKafkaTopicCheck(() => admin, 1000).check(['missing'])).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
  });
});
