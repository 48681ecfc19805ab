import { describe, expect, it } from 'vitest';
import { encodeCheckpoint } from '../../src/checkpoint/checkpoint.js';
import type { CheckpointClient } from '../../src/checkpoint/checkpoint-client.js';
import { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import type { RelayError } from '../../src/errors.js';

type StoredRecord = { key: string | undefined; value: Buffer | null; partition?: number };

/** A checkpoint topic not compacted yet: every record still there, in offset order. */
function topicOf(records: StoredRecord[]): CheckpointClient {
  return {
    createTopic: async () => undefined,
    readAll: async (_topic, onRecord) => {
      for (const record of records) onRecord({ partition: 0, ...record });
      return true;
    },
    producer: () => {
      throw new Error('not used');
    },
  };
}

const checkpoint = (slot: string, lsn: bigint): StoredRecord => ({
  key: slot,
  value: encodeCheckpoint({ slot, lsn, commitTimeMs: undefined, writtenAtMs: 0, guarantee: 'at-least-once' }),
});

const read = (records: StoredRecord[]) =>
  new KafkaCheckpointStore(topicOf(records), 'checkpoints', ['k:9092']).read('slot_a').then(
    (found) => found?.lsn,
    (err: RelayError) => err,
  );

describe('checkpoint store: the slot is what its last record says, before compaction as after it', () => {
  it("refuses a slot's records in several partitions (the topic's partition count was raised): which is newest cannot be told", async () => {
    const refused = await read([checkpoint('slot_a', 0x3000n), { ...checkpoint('slot_a', 0x1000n), partition: 2 }, { ...checkpoint('slot_b', 0x1000n), partition: 1 }]);
    expect(refused).toMatchObject({ code: 'CHECKPOINT_FAILED', details: { partitions: [0, 2] } });
    expect((refused as RelayError).hint).toContain('new topic');
    // Other slots' records elsewhere do not matter.
    expect(await read([checkpoint('slot_a', 0x3000n), { ...checkpoint('slot_b', 0x1000n), partition: 1 }])).toBe(0x3000n);
  });

  it('a tombstone deletes the checkpoint: the older record behind it does not count', async () => {
    // After compaction only the tombstone (then nothing) is left: the read must not depend on when the cleaner ran.
    expect(await read([checkpoint('slot_a', 0x1000n), { key: 'slot_a', value: null }])).toBeUndefined();
    expect(await read([checkpoint('slot_a', 0x1000n), { key: 'slot_a', value: null }, checkpoint('slot_a', 0x3000n)])).toBe(0x3000n);
  });

  it('a record it cannot read fails the read only while it is the last one of the slot', async () => {
    const garbage = { key: 'slot_a', value: Buffer.from('not json') };
    expect(await read([garbage, checkpoint('slot_a', 0x2000n)])).toBe(0x2000n);
    const error = (await read([checkpoint('slot_a', 0x2000n), garbage])) as RelayError;
    expect(error.code).toBe('CHECKPOINT_FAILED');
    // Other slots' records never matter.
    expect(await read([checkpoint('slot_a', 0x2000n), { key: 'slot_b', value: null }, { key: 'slot_b', value: Buffer.from('x') }])).toBe(0x2000n);
  });
});
