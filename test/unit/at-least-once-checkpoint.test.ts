import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/checkpoint/checkpoint.js';
import type { CheckpointClient, CheckpointRecord } from '../../src/checkpoint/checkpoint-client.js';
import type { Lsn } from '../../src/lsn.js';
import { strategyConfig } from '../support/fakes/strategy-config.js';

/** What the checkpoint writer sent to the checkpoint topic. */
const written: CheckpointRecord[] = [];
/** The checkpoint in the topic (another instance may write a newer one). */
let stored: Lsn = 0x9000n;

// The checkpoint topic (a checkpoint at 0/9000 recording a 6h window) and the slot's bounds (kept behind by that
// window), as fakes: no broker, no PostgreSQL.
vi.mock('../../src/checkpoint/create-checkpoint-client.js', () => ({
  createCheckpointClient: (): CheckpointClient => ({
    createTopic: async () => undefined,
    readAll: async (_topic, onRecord) => {
      onRecord({ key: 's', value: encodeCheckpoint({ slot: 's', lsn: stored, commitTimeMs: 0, writtenAtMs: 0, guarantee: 'at-least-once', replayWindow: '6h' }), partition: 0 });
      return true;
    },
    producer: () => ({ send: async (_topic: string, record: CheckpointRecord) => void written.push(record), close: async () => undefined }),
  }),
}));
vi.mock('../../src/checkpoint/start-position.js', async (original) => (await import('../support/fakes/slot-bounds.js')).startPositionWithSlot(original));

const { deliveryStrategy } = await import('../../src/pipeline/delivery-strategy.js');

const config = (startLsn: Lsn | undefined) => strategyConfig(startLsn, 'at-least-once');

describe('at-least-once with a replay window: a forward skip (run --start-lsn past the checkpoint)', () => {
  it('is recorded in the checkpoint before anything streams (a crash or a halt at the next event): the next run does not stream the skipped range again', async () => {
    const strategy = deliveryStrategy(config(0x9800n), pino({ level: 'silent' }), { plainSink: {} as never });
    expect((await strategy.startPosition())?.lsn).toBe(0x9800n);
    // Before: nothing was written until the first periodic write, and a crash before it started the next run at
    // 0/9000, ahead of the slot (0/1000): the skip undone.
    expect(written.map((r) => decodeCheckpoint(r.value, 't').lsn)).toEqual([0x9800n]);
    // The run ends before any transaction after 0/9800 is confirmed: nothing more to write.
    await strategy.close();
    expect(written.map((r) => decodeCheckpoint(r.value, 't').lsn)).toEqual([0x9800n]);
  });
});

describe('at-least-once with a replay window: where a later session starts', () => {
  it('at the checkpoint another instance wrote meanwhile (it held the slot and delivered), not at its own older position', async () => {
    stored = 0x9000n;
    const strategy = deliveryStrategy(config(undefined), pino({ level: 'silent' }), { plainSink: {} as never });
    expect((await strategy.startPosition())?.lsn).toBe(0x9000n);
    // Before: undefined, the session resumed at this process's own position (or the slot, older still).
    stored = 0x9800n;
    expect((await strategy.resumePosition())?.lsn).toBe(0x9800n);
  });

  it('not at the checkpoint a replay below it started from (that would pass over the rest of the replayed range)', async () => {
    stored = 0x9000n;
    const strategy = deliveryStrategy(config(0x2000n), pino({ level: 'silent' }), { plainSink: {} as never, replay: true } as never);
    expect((await strategy.startPosition())?.lsn).toBe(0x2000n);
    expect(await strategy.resumePosition()).toBeUndefined();
  });
});
