import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { decodeCheckpoint, describeCheckpoint } from '../../src/checkpoint/checkpoint.js';
import type { CheckpointClient } from '../../src/checkpoint/checkpoint-client.js';
import { strategyConfig } from '../support/fakes/strategy-config.js';

/**
 * A checkpoint record of another version (or edited): its times as epoch milliseconds, not ISO strings. The
 * position, the window and the server are all readable.
 */
const record = Buffer.from(JSON.stringify({ slot: 's', lsn: '0/9000', commitTime: 1_700_000_000_000, writtenAt: 1_700_000_000_500, guarantee: 'at-least-once', systemId: '7' }));

vi.mock('../../src/checkpoint/create-checkpoint-client.js', () => ({
  createCheckpointClient: (): CheckpointClient => ({
    createTopic: async () => undefined,
    readAll: async (_topic, onRecord) => {
      onRecord({ key: 's', value: record, partition: 0 });
      return true;
    },
    producer: () => ({ send: async () => undefined, close: async () => undefined }),
  }),
}));
vi.mock('../../src/checkpoint/start-position.js', async (original) => (await import('../support/fakes/slot-bounds.js')).startPositionWithSlot(original));

const { deliveryStrategy } = await import('../../src/pipeline/delivery-strategy.js');

describe('a checkpoint record whose times the relay cannot read (another version, or edited)', () => {
  it('is read with its times unknown: describing it (the start, status) does not throw', () => {
    const checkpoint = decodeCheckpoint(record, 't');
    expect(checkpoint.lsn).toBe(0x9000n);
    expect(checkpoint.commitTimeMs).toBeUndefined();
    // Before: NaN, and describeCheckpoint threw RangeError: Invalid time value.
    expect(() => describeCheckpoint(checkpoint)).not.toThrow();
  });

  it('does not fail the start with INTERNAL: the relay starts at the position it records', async () => {
    const strategy = deliveryStrategy(strategyConfig(undefined, 'at-least-once'), pino({ level: 'silent' }), { plainSink: {} as never });
    // Before: rejected with RangeError (INTERNAL, "a defect of outbox-relay ... a restart resumes"), at every restart.
    await expect(strategy.startPosition()).resolves.toMatchObject({ lsn: 0x9000n });
    await strategy.close();
  });
});

describe('a checkpoint record that is JSON but no object (another program wrote the topic)', () => {
  it('is refused as a record the relay cannot read (CHECKPOINT_FAILED, with the fix), not a TypeError (INTERNAL)', async () => {
    const { KafkaCheckpointStore } = await import('../../src/checkpoint/kafka-checkpoint-store.js');
    const topic: CheckpointClient = {
      createTopic: async () => undefined,
      readAll: async (_topic, onRecord) => {
        onRecord({ key: 's', value: Buffer.from('null'), partition: 0 });
        return true;
      },
      producer: () => ({ send: async () => undefined, close: async () => undefined }),
    };
    // Before: TypeError: Cannot read properties of null (reading 'slot').
    await expect(new KafkaCheckpointStore(topic, 'checkpoints', ['k:9092']).read('s')).rejects.toMatchObject({ code: 'CHECKPOINT_FAILED', message: expect.stringContaining('cannot read') });
  });
});
