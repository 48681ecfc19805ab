import type { Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { encodeCheckpoint } from '../../src/checkpoint/checkpoint.js';
import { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import { KafkaJsCheckpointClient } from '../../src/checkpoint/kafkajs-checkpoint-client.js';
import type { RelayError } from '../../src/errors.js';

const EVENTS = { END_BATCH_PROCESS: 'consumer.end_batch_process', CRASH: 'consumer.crash' } as const;

/**
 * kafkajs' consumer as far as the checkpoint read uses it. `run()` behaves as kafkajs 2.2.4's does
 * (consumer/index.js, runner.js): a failure to join the group or to fetch is not thrown from run() but emitted as
 * CRASH (restart false when the error is not retriable), after which the consumer disconnects itself.
 */
class FakeConsumer {
  readonly events = EVENTS;
  private readonly listeners = new Map<string, ((event: { payload: unknown }) => void)[]>();
  constructor(private readonly behave: (consumer: FakeConsumer, eachMessage: (message: { key: Buffer; value: Buffer }) => Promise<void>) => Promise<void>) {}
  on(event: string, listener: (event: { payload: unknown }) => void) {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
  }
  emit(event: string, payload: unknown) {
    for (const listener of this.listeners.get(event) ?? []) listener({ payload });
  }
  async connect() {}
  async subscribe() {}
  async run({ eachMessage }: { eachMessage: (arg: { message: { key: Buffer; value: Buffer } }) => Promise<void> }) {
    await this.behave(this, (message) => eachMessage({ message }));
  }
  async disconnect() {}
}

function fakeKafka(behave: ConstructorParameters<typeof FakeConsumer>[0]): Kafka {
  const admin = {
    connect: async () => undefined,
    disconnect: async () => undefined,
    listTopics: async () => ['checkpoints'],
    fetchTopicOffsets: async () => [{ partition: 0, offset: '1', high: '1', low: '0' }],
  };
  return { admin: () => admin, consumer: () => new FakeConsumer(behave) } as unknown as Kafka;
}

const notAuthorized = Object.assign(new Error('Not authorized to access group: Group authorization failed'), { type: 'GROUP_AUTHORIZATION_FAILED', retriable: false });

/** The read's outcome: the checkpoint, or the error. A read that waited out its 3 s instead fails with the open-transaction timeout, not the cause. */
function read(kafka: Kafka): Promise<unknown> {
  const store = new KafkaCheckpointStore(new KafkaJsCheckpointClient(kafka), 'checkpoints');
  return store.read('slot_a', 3000).then(
    (checkpoint) => checkpoint,
    (err: RelayError) => err,
  );
}

describe('checkpoint read through kafkajs: a consumer that gave up', () => {
  it('fails at once with the cause when the group cannot be joined, not after the timeout with an open transaction to blame', async () => {
    // runner.start() catches the join error and emits CRASH before run() resolves.
    const outcome = await read(fakeKafka(async (consumer) => consumer.emit(EVENTS.CRASH, { error: notAuthorized, groupId: 'g', restart: false })));
    const error = outcome as RelayError;
    expect(error.code).toBe('CHECKPOINT_FAILED');
    expect(error.message).toContain('Group authorization failed');
    expect(error.hint).toContain('outbox-relay-checkpoint-reader-');
  });

  it('fails at once when the fetch fails for good after run() resolved', async () => {
    const fetchRefused = Object.assign(new Error('Not authorized to access topics: [Topic authorization failed]'), { retriable: false });
    const outcome = await read(
      fakeKafka(async (consumer) => {
        setTimeout(() => consumer.emit(EVENTS.CRASH, { error: fetchRefused, groupId: 'g', restart: false }), 50);
      }),
    );
    expect((outcome as RelayError).message).toContain('Topic authorization failed');
  });

  it('keeps reading through a crash kafkajs restarts from, and returns the checkpoint', async () => {
    const value = encodeCheckpoint({ slot: 'slot_a', lsn: 0x1000n, commitTimeMs: undefined, writtenAtMs: 0, guarantee: 'at-least-once' });
    const outcome = await read(
      fakeKafka(async (consumer, eachMessage) => {
        consumer.emit(EVENTS.CRASH, { error: new Error('Connection timeout'), groupId: 'g', restart: true });
        setTimeout(() => {
          void eachMessage({ key: Buffer.from('slot_a'), value }).then(() => consumer.emit(EVENTS.END_BATCH_PROCESS, { partition: 0, lastOffset: '0' }));
        }, 50);
      }),
    );
    expect((outcome as { lsn: bigint }).lsn).toBe(0x1000n);
  });
});
