import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../../src/checkpoint/checkpoint.js';
import type { CheckpointClient } from '../../src/checkpoint/checkpoint-client.js';
import { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import { RecordedReplayWindow } from '../../src/checkpoint/recorded-window.js';
import { ReplayWindowPosition } from '../../src/checkpoint/replay-window.js';
import type { Lsn } from '../../src/lsn.js';

const MINUTE = 60_000;

/** Position 1000 + s, delivered at second s: when a reported position was delivered. */
const at = (second: number): Lsn => BigInt(1000 + second);
const deliveredAtMs = (lsn: Lsn): number => Number(lsn - 1000n) * 1000;

describe('replay window across restarts', () => {
  it('a restart seeded with the recorded samples reports the old positions on their original schedule', () => {
    const before = new ReplayWindowPosition({ kind: 'duration', ms: MINUTE });
    before.raiseFloor(at(0));
    for (let s = 1; s <= 40; s++) before.confirmed(at(s), s * 1000);
    const recorded = before.pending(at(40));
    expect(recorded.length).toBeLessThanOrEqual(32);

    // Restarted at 40 s: the slot is still at the floor, the checkpoint at 40.
    const after = new ReplayWindowPosition({ kind: 'duration', ms: MINUTE });
    after.raiseFloor(at(0));
    after.seed(recorded, at(40));
    after.confirmed(at(40), 41_000);
    for (let now = 41_000; now <= 100_000; now += 250) {
      const reported = after.position(now);
      // Never early (the slot's own position aside): whatever was delivered within the window stays replayable.
      if (reported > at(0)) expect(now - deliveredAtMs(reported)).toBeGreaterThanOrEqual(MINUTE);
      // And not much later than without the restart (thinning merges at most two seconds into one sample).
      expect(deliveredAtMs(reported)).toBeGreaterThanOrEqual(Math.min(40_000, now - MINUTE - 2000));
    }
  });

  it('records no sample at or below a slot raised past it (another instance held the slot meanwhile and moved it)', () => {
    const w = new ReplayWindowPosition({ kind: 'duration', ms: MINUTE });
    w.raiseFloor(at(0));
    for (let s = 1; s <= 30; s++) w.confirmed(at(s), s * 1000);
    // Taken back at 31 s from a slot the other instance left at 20: positions up to it are released already.
    w.raiseFloor(at(20));
    expect(w.pending(at(30)).map((s) => s.lsn)).toEqual([at(21), at(22), at(23), at(24), at(25), at(26), at(27), at(28), at(29), at(30)]);
    expect(w.position(31_000)).toBe(at(20));
  });

  it('thins the recorded samples to 32, each keeping the later position and time, none above the checkpoint', () => {
    const w = new ReplayWindowPosition({ kind: 'duration', ms: 6 * 3_600_000 });
    for (let s = 1; s <= 7200; s++) w.confirmed(at(s), s * 1000);
    const recorded = w.pending(at(7000));
    expect(recorded).toHaveLength(32);
    expect(recorded.at(-1)!.lsn).toBeLessThanOrEqual(at(7000));
    // Stamped when their position was delivered or later, never earlier; oldest first.
    for (const sample of recorded) expect(sample.atMs).toBeGreaterThanOrEqual(deliveredAtMs(sample.lsn));
    expect(recorded.map((s) => s.atMs)).toEqual([...recorded.map((s) => s.atMs)].sort((a, b) => a - b));
  });

  it('seeds only samples above the slot and at most the checkpoint, and never reports past what this run delivered', () => {
    const w = new ReplayWindowPosition({ kind: 'duration', ms: MINUTE });
    w.raiseFloor(at(10));
    w.seed(
      [
        { lsn: at(5), atMs: 5000 },
        { lsn: at(20), atMs: 20_000 },
        { lsn: at(50), atMs: 50_000 },
      ],
      at(30),
    );
    // A replay below the checkpoint delivers 15 first: 20 waits until it is delivered again, and 15, queued behind
    // it, with it (later than it could be, never earlier).
    w.confirmed(at(15), 200_000);
    expect(w.position(300_000)).toBe(at(10));
    w.confirmed(at(30), 300_000);
    expect(w.position(300_000)).toBe(at(20));
    expect(w.position(360_000)).toBe(at(30));
  });

  it('restarted every 20 s, a 1 min window still moves the slot, never ahead of the window (through the checkpoint record)', async () => {
    const client = {} as CheckpointClient;
    const logger = pino({ level: 'silent' });
    let slot = at(0);
    let delivered = at(0);
    let record: Buffer | undefined;
    let window: RecordedReplayWindow | undefined;
    let store: KafkaCheckpointStore | undefined;
    for (let s = 0; s <= 300; s++) {
      if (s % 20 === 0) {
        // A restart: the last checkpoint written is read back, the slot is where the last report left it.
        if (store) record = store.message({ slot: 's', lsn: delivered, commitTimeMs: undefined, writtenAtMs: s * 1000, guarantee: 'at-least-once' }).value;
        const checkpoint = record ? decodeCheckpoint(record, 'checkpoints') : { slot: 's', lsn: delivered, commitTimeMs: undefined, writtenAtMs: 0, guarantee: 'at-least-once', replayWindow: '1m' };
        store = new KafkaCheckpointStore(client, 'checkpoints', ['k:9092']);
        window = new RecordedReplayWindow(undefined, store, logger, 'at-least-once');
        await window.resolve(checkpoint, { confirmed: slot, active: false });
      }
      delivered = at(s);
      slot = window!.report(delivered, s * 1000);
      expect(s * 1000 - deliveredAtMs(slot)).toBeGreaterThanOrEqual(Math.min(s * 1000, MINUTE));
    }
    // Without the recorded samples each restart began the window again: the slot stayed at 1000 for good.
    expect(slot).toBeGreaterThanOrEqual(at(300 - 60 - 5));
  });
});
