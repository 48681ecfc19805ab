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

/** `high`: what kafkajs' admin answers as a partition's end (its ListOffsets is read_committed: the last stable offset). */
function fakeKafka(behave: ConstructorParameters<typeof FakeConsumer>[0], high = '1'): Kafka {
  const admin = {
    connect: async () => undefined,
    disconnect: async () => undefined,
    listTopics: async () => ['checkpoints'],
    fetchTopicOffsets: async () => [{ partition: 0, offset: high, high, low: '0' }],
  };
  return { admin: () => admin, consumer: () => new FakeConsumer(behave) } as unknown as Kafka;
}

const notAuthorized = Object.assign(new Error('Not authorized to access group: Group authorization failed'), { type: 'GROUP_AUTHORIZATION_FAILED', retriable: false });

/** The read's outcome: the checkpoint, or the error. A read that waited out its 3 s instead fails with the open-transaction timeout, not the cause. */
function read(kafka: Kafka): Promise<unknown> {
  const store = new KafkaCheckpointStore(new KafkaJsCheckpointClient(kafka), 'checkpoints', ['k:9092']);
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
          void eachMessage({ key: Buffer.from('slot_a'), value }).then(() => consumer.emit(EVENTS.END_BATCH_PROCESS, { partition: 0, lastOffset: '0', highWatermark: '1' }));
        }, 50);
      }),
    );
    expect((outcome as { lsn: bigint }).lsn).toBe(0x1000n);
  });
});

describe('checkpoint read through kafkajs: the end of the topic', () => {
  const checkpointAt = (lsn: bigint) => encodeCheckpoint({ slot: 'slot_a', lsn, commitTimeMs: undefined, writtenAtMs: 0, guarantee: 'at-least-once' });

  it("reads past another producer's open transaction to the slot's newest checkpoint, written after that transaction began", async () => {
    // Offsets: 0 slot_a at 0/1000; 1 a record of another relay's open transaction (exactly-once, slot_b, sharing
    // the topic); 2 slot_a at 0/2000, written plainly; then that transaction's commit marker at 3. kafkajs' admin
    // answers the last stable offset (1) as the end, the fetches' high watermark is the true one (3, then 4).
    const outcome = await read(
      fakeKafka(async (consumer, eachMessage) => {
        await eachMessage({ key: Buffer.from('slot_a'), value: checkpointAt(0x1000n) });
        consumer.emit(EVENTS.END_BATCH_PROCESS, { partition: 0, lastOffset: '0', highWatermark: '3' });
        // The other relay commits: read_committed hands over the rest.
        setTimeout(() => {
          void eachMessage({ key: Buffer.from('slot_a'), value: checkpointAt(0x2000n) }).then(() => consumer.emit(EVENTS.END_BATCH_PROCESS, { partition: 0, lastOffset: '3', highWatermark: '4' }));
        }, 50);
      }, '1'),
    );
    expect((outcome as { lsn: bigint }).lsn).toBe(0x2000n);
  });
});
