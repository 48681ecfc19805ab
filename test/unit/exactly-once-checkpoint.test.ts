import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../../src/checkpoint/checkpoint.js';
import type { CheckpointClient } from '../../src/checkpoint/checkpoint-client.js';
import type { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import type { RelayError } from '../../src/errors.js';
import type { Lsn } from '../../src/lsn.js';
import { classifyRdKafkaError } from '../../src/sink/rdkafka-errors.js';
import { transactionalIdRefused } from '../../src/sink/transaction-errors.js';
import { FakeSink, kafkaDown } from '../support/fakes/fake-sink.js';
import { strategyConfig } from '../support/fakes/strategy-config.js';

/** The checkpoint topic's records of slot "s", the last one the checkpoint: read at start, and again before every later session. */
let topic: Buffer[] = [];
const checkpointAt = (lsn: Lsn) => encodeCheckpoint({ slot: 's', lsn, commitTimeMs: 0, writtenAtMs: 0, guarantee: 'exactly-once', replayWindow: '6h' });
const checkpoint = () => decodeCheckpoint(topic.at(-1)!, 't');

/** The transactional producer: its commits land in the topic as the record the store builds, as the real sink's do. */
class TopicSink extends FakeSink {
  constructor(private readonly store: KafkaCheckpointStore) {
    super();
  }

  override async commit(committed: Checkpoint): Promise<void> {
    await super.commit(committed);
    topic.push(this.store.message(committed).value);
  }
}
/** The sink of the strategy created last. */
let sink: TopicSink;

// The checkpoint topic, the slot's bounds (kept behind by the 6h window) and the transactional sink, as fakes: no
// broker, no PostgreSQL.
vi.mock('../../src/checkpoint/create-checkpoint-client.js', () => ({
  createCheckpointClient: (): CheckpointClient => ({
    createTopic: async () => undefined,
    readAll: async (_topic, onRecord) => {
      onRecord({ key: 's', value: topic.at(-1)!, partition: 0 });
      return true;
    },
    producer: () => ({ send: async () => undefined, close: async () => undefined }),
  }),
}));
vi.mock('../../src/checkpoint/start-position.js', async (original) => (await import('../support/fakes/slot-bounds.js')).startPositionWithSlot(original));
vi.mock('../../src/sink/create-sink.js', () => ({
  createTransactionalSink: (_config: unknown, store: KafkaCheckpointStore) => (sink = new TopicSink(store)),
}));

const { deliveryStrategy } = await import('../../src/pipeline/delivery-strategy.js');

const config = (startLsn: Lsn | undefined) => strategyConfig(startLsn, 'exactly-once');
const strategyOf = (startLsn: Lsn | undefined, replay?: boolean) => deliveryStrategy(config(startLsn), pino({ level: 'silent' }), { plainSink: {} as never, replay });

describe('exactly-once: where a later session of a replay below the checkpoint starts', () => {
  it('does not jump to the checkpoint the replay started below (that would skip the rest of the replayed range)', async () => {
    topic = [checkpointAt(0x9000n)];
    const strategy = strategyOf(0x2000n);
    // A replay from 0/2000 inside a 6h window, with the checkpoint at 0/9000: nothing recorded for it.
    expect(await strategy.startPosition()).toEqual({ lsn: 0x2000n, timeline: undefined });
    expect(sink.commits).toEqual([]);
    // The replay's Kafka transactions commit the checkpoint at its floor (0/9000), so a later read of it says
    // nothing about how far the replay got: the session after a reconnect or a source restart must start at
    // the relay's own confirmed position (undefined here), not at 0/9000, or 0/2000..0/9000 is never re-sent.
    const resume = await strategy.resumePosition();
    expect(resume === undefined || resume.lsn <= 0x2000n).toBe(true);
    // Once the replay passed the checkpoint, a newer one is a commit this run made: a restart resumes there.
    topic.push(checkpointAt(0x9800n));
    expect((await strategy.resumePosition())?.lsn).toBe(0x9800n);
  });

  it('a plain start keeps resuming from the checkpoint it started at, and from newer ones', async () => {
    topic = [checkpointAt(0x9000n)];
    const strategy = strategyOf(undefined);
    expect((await strategy.startPosition())?.lsn).toBe(0x9000n);
    // The relay's confirmed position is the start (0/9000) at least, so a session resuming there misses nothing.
    const resume = await strategy.resumePosition();
    expect(resume === undefined || resume.lsn === 0x9000n).toBe(true);
    topic.push(checkpointAt(0x9800n));
    expect((await strategy.resumePosition())?.lsn).toBe(0x9800n);
  });
});

describe('exactly-once with a replay window: a forward skip (run --start-lsn past the checkpoint)', () => {
  it('is committed at once, in a Kafka transaction of its own: a halt before the next commit does not stream the skipped range again', async () => {
    topic = [checkpointAt(0x9000n)];
    const strategy = strategyOf(0x9800n);
    expect((await strategy.startPosition())?.lsn).toBe(0x9800n);
    // The run ends before any transaction after 0/9800 is committed (the next event poison too: a halt).
    await strategy.close();
    // Before: no commit, the checkpoint stayed at 0/9000, ahead of the slot (0/1000): the next run streamed
    // 0/9000..0/9800 again, the skipped poison event included.
    expect(sink.commits.map((c) => c.lsn)).toEqual([0x9800n]);
    expect(sink.visible).toEqual([]);
    expect(checkpoint()).toMatchObject({ lsn: 0x9800n, guarantee: 'exactly-once', replayWindow: '6h', systemId: '7' });
    expect((await strategyOf(undefined).startPosition())?.lsn).toBe(0x9800n);
  });

  it('that cannot be committed fails the start with CHECKPOINT_FAILED, retried by the relay; the checkpoint stays', async () => {
    topic = [checkpointAt(0x9000n)];
    const strategy = strategyOf(0x9800n);
    sink.scriptCommits(kafkaDown());
    await expect(strategy.startPosition()).rejects.toMatchObject({ code: 'CHECKPOINT_FAILED', retriable: true, details: { startLsn: '0/9800', checkpointLsn: '0/9000' } });
    expect(checkpoint().lsn).toBe(0x9000n);
    // The relay's next attempt (after a new claim) decides the start again and records it.
    expect((await strategy.startPosition())?.lsn).toBe(0x9800n);
    expect(checkpoint().lsn).toBe(0x9800n);
  });

  it("that the brokers refuse names the refusal's grant (the transactional id's, the checkpoint topic's), not 'check the brokers'", async () => {
    topic = [checkpointAt(0x9000n)];
    const strategy = strategyOf(0x9800n);
    // As the transactional sink classifies it (it knows the slot and the brokers).
    sink.scriptCommits(transactionalIdRefused('s', ['k:9092'], Object.assign(new Error('Broker: Transactional Id authorization failed'), { code: 53 })));
    const refused = (await strategy.startPosition().catch((err: unknown) => err)) as RelayError;
    expect(refused.code).toBe('CHECKPOINT_FAILED');
    expect(refused.hint).toContain('transactional id outbox-relay.s (kafka-acls.sh ');
    sink.scriptCommits(classifyRdKafkaError(Object.assign(new Error('Broker: Topic authorization failed'), { code: 29 })));
    const topicRefused = (await strategy.startPosition().catch((err: unknown) => err)) as RelayError;
    expect(topicRefused.hint).toMatch(/^grant the relay's principal WRITE and DESCRIBE on the topic \S+ /);
  });

  it('is not what a replay does: its start, past a checkpoint behind the slot, is not recorded', async () => {
    topic = [checkpointAt(0x800n)];
    expect((await strategyOf(0x1000n, true).startPosition())?.lsn).toBe(0x1000n);
    expect(sink.commits).toEqual([]);
  });
});
