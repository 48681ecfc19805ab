import { describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../../src/checkpoint/checkpoint.js';
import type { CheckpointClient } from '../../src/checkpoint/checkpoint-client.js';
import { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';

const checkpoint: Checkpoint = { slot: 's', lsn: 0x9000n, commitTimeMs: 1_700_000_000_000, writtenAtMs: 1_700_000_001_000, guarantee: 'at-least-once', replayWindow: '6h' };
const samples = [
  { lsn: 0x5000n, atMs: 1_699_990_000_000 },
  { lsn: 0x9000n, atMs: 1_699_999_000_000 },
];

/** The record as another writer (an older or foreign relay, a person) might have left it. */
const withPending = (replayPending: unknown): Buffer => Buffer.from(JSON.stringify({ ...JSON.parse(encodeCheckpoint(checkpoint).toString()), replayPending }));

describe('checkpoint record: the replay window samples', () => {
  it('round-trips the samples, readable in the topic', () => {
    const value = encodeCheckpoint({ ...checkpoint, replaySamples: samples });
    expect(JSON.parse(value.toString()).replayPending).toEqual([
      { lsn: '0/5000', deliveredAt: '2023-11-14T19:26:40.000Z' },
      { lsn: '0/9000', deliveredAt: '2023-11-14T21:56:40.000Z' },
    ]);
    expect(decodeCheckpoint(value, 'checkpoints')).toEqual({ ...checkpoint, replaySamples: samples });
  });

  it('reads well-formed samples a writer left; a record without any (an older relay, a size window) or with malformed ones decodes as before', () => {
    expect(decodeCheckpoint(withPending([{ lsn: '0/5000', deliveredAt: '2023-11-14T19:26:40.000Z' }]), 'checkpoints').replaySamples).toEqual([samples[0]]);
    expect(decodeCheckpoint(encodeCheckpoint(checkpoint), 'checkpoints')).toEqual(checkpoint);
    expect(JSON.parse(encodeCheckpoint({ ...checkpoint, replaySamples: [] }).toString())).not.toHaveProperty('replayPending');
    // Malformed: ignored whole, the rest of the record kept (the window then starts from the slot, as before).
    for (const bad of ['0/5000', [{ lsn: 'zz', deliveredAt: '2023-11-14T19:46:40.000Z' }], [{ lsn: '0/5000' }], [{ lsn: '0/5000', deliveredAt: 'yesterday' }], [null], { lsn: '0/5000' }]) {
      expect(decodeCheckpoint(withPending(bad), 'checkpoints')).toEqual(checkpoint);
    }
  });

  it('the store writes the window in force\'s samples at or below the record\'s position, none without a window', () => {
    const store = new KafkaCheckpointStore({} as CheckpointClient, 'checkpoints', ['k:9092']);
    const read = (c: Checkpoint) => decodeCheckpoint(store.message(c).value, 'checkpoints');
    // A rewritten record does not keep the samples it was read with when no time window is in force.
    expect(read({ ...checkpoint, replaySamples: samples }).replaySamples).toBeUndefined();
    store.replaySamples = (upTo) => samples.filter((s) => s.lsn <= upTo);
    expect(read({ ...checkpoint, lsn: 0x8000n }).replaySamples).toEqual([samples[0]]);
  });
});
