import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { KafkaCheckpointStore } from '../../src/checkpoint/kafka-checkpoint-store.js';
import { RecordedReplayWindow } from '../../src/checkpoint/recorded-window.js';
import { ReplayWindowPosition, formatReplayWindow, parseReplayWindow } from '../../src/checkpoint/replay-window.js';
import { chooseStart, foreignCheckpoint } from '../../src/checkpoint/start-position.js';

/** A checkpoint store whose writes land in `written`; like the real one, it records the window in force, not the one read. */
function recordingStore(written: Checkpoint[]): KafkaCheckpointStore {
  return {
    replayWindow: undefined as string | undefined,
    topic: 'checkpoints',
    message(this: { replayWindow: string }, c: Checkpoint) {
      return { ...c, replayWindow: this.replayWindow };
    },
    client: { producer: () => ({ send: async (_topic: string, c: Checkpoint) => void written.push(c), close: async () => undefined }) },
  } as unknown as KafkaCheckpointStore;
}

describe('replay window', () => {
  it('parses durations and sizes, and refuses a bare number', () => {
    expect(parseReplayWindow('6h')).toEqual({ kind: 'duration', ms: 6 * 3_600_000 });
    expect(parseReplayWindow('2GiB')).toEqual({ kind: 'size', bytes: 2 * 1024 ** 3 });
    expect(parseReplayWindow('1000')).toBeUndefined();
    expect(parseReplayWindow('5 parsecs')).toBeUndefined();
    // Megabytes or minutes? Before: 512 minutes. Lower case stays minutes, a size takes its B.
    expect(parseReplayWindow('512M')).toBeUndefined();
    expect(parseReplayWindow('512m')).toEqual({ kind: 'duration', ms: 512 * 60_000 });
    expect(parseReplayWindow('512MB')).toEqual({ kind: 'size', bytes: 512 * 1000 ** 2 });
    // 0 (any zero amount) asks for no window: it releases a window recorded in the checkpoint.
    expect(parseReplayWindow('0')).toEqual({ kind: 'none' });
    expect(parseReplayWindow('0s')).toEqual({ kind: 'none' });
    for (const text of ['6h', '2GiB', '90m', '0']) expect(formatReplayWindow(parseReplayWindow(text)!)).toBe(text);
  });

  it('a size window reports the delivered position minus the size, never below the slot and never ahead of delivery', () => {
    const w = new ReplayWindowPosition({ kind: 'size', bytes: 1000 });
    w.raiseFloor(5000n);
    expect(w.position(0)).toBe(5000n);
    w.confirmed(5500n, 0);
    expect(w.position(0)).toBe(5000n);
    w.confirmed(9000n, 0);
    expect(w.position(0)).toBe(8000n);
    expect(w.retainedBytes).toBe(1000);
    // An older confirmation (a replay) never moves it back.
    w.confirmed(6000n, 0);
    expect(w.position(0)).toBe(8000n);
  });

  it('a time window reports the newest position delivered at least that long ago', () => {
    const w = new ReplayWindowPosition({ kind: 'duration', ms: 60_000 });
    w.raiseFloor(100n);
    w.confirmed(200n, 0);
    w.confirmed(300n, 30_000);
    expect(w.position(59_999)).toBe(100n);
    expect(w.position(60_000)).toBe(200n);
    expect(w.position(90_000)).toBe(300n);
    expect(w.retainedBytes).toBe(0);
  });

  it('a time window never reports a position before it is that old, however often positions arrive (one sample per 1/1000 of the window)', () => {
    // 6 h: a sample every 21.6 s; positions every second, as the status interval confirms them.
    const ms = 6 * 3_600_000;
    const w = new ReplayWindowPosition({ kind: 'duration', ms });
    const deliveredAt = new Map<bigint, number>();
    for (let t = 0; t <= 120_000; t += 1000) {
      const lsn = BigInt(1000 + t);
      deliveredAt.set(lsn, t);
      w.confirmed(lsn, t);
    }
    for (let now = ms; now <= ms + 120_000; now += 500) {
      const reported = w.position(now);
      if (deliveredAt.has(reported)) expect(now - deliveredAt.get(reported)!).toBeGreaterThanOrEqual(ms);
    }
    // Nothing delivered after 120 s: the newest position is reported once it is that old.
    expect(w.position(ms + 120_000)).toBe(BigInt(1000 + 120_000));
  });
});

describe('start position', () => {
  it('prefers --start-lsn, refuses one below the slot, else resumes at a checkpoint ahead of the slot', () => {
    expect(chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested: 500n, checkpoint: 900n, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: true })).toBe(500n);
    expect(() => chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested: 300n, checkpoint: undefined, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: true })).toThrow(/oldest replayable LSN/);
    expect(chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested: undefined, checkpoint: 900n, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: true })).toBe(900n);
    expect(chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested: undefined, checkpoint: 300n, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: true })).toBeUndefined();
  });

  it('refuses --start-lsn beyond the current WAL end (it would be confirmed and skip everything committed before it)', () => {
    expect(chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested: 1000n, checkpoint: undefined, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: true })).toBe(1000n);
    expect(() => chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested: 1001n, checkpoint: undefined, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: true })).toThrow(/has written WAL only up to 0\/3E8/);
    // run may leave --start-lsn out; replay needs it, so its fix does not say to (before: 'leave --start-lsn … unset',
    // then 'missing required setting startLsn').
    const fix = (forwardSkip: boolean) => {
      try {
        chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested: 1001n, checkpoint: undefined, slotConfirmed: 400n, walEnd: 1000n, forwardSkip });
      } catch (err) {
        return (err as { hint?: string }).hint;
      }
    };
    expect(fix(true)).toContain('or leave --start-lsn / OUTBOX_RELAY_START_LSN unset to start at the slot');
    expect(fix(false)).toBe('pass an LSN up to 0/3E8 (an outbox-lsn header of a delivered record, or SELECT pg_current_wal_lsn())');
  });

  it('a replay (no forward skip) refuses --start-lsn beyond what was delivered (it would confirm the events in between unsent); run --start-lsn may skip', () => {
    // Delivered: the checkpoint when a replay window keeps the slot behind, else the slot.
    expect(chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested: 900n, checkpoint: 900n, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: false })).toBe(900n);
    expect(chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested: 400n, checkpoint: undefined, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: false })).toBe(400n);
    expect(() => chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested: 901n, checkpoint: 900n, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: false })).toThrow(
      expect.objectContaining({ code: 'OPERATION_REFUSED', details: { requestedLsn: '0/385', deliveredLsn: '0/384' }, hint: expect.stringContaining('slot advance') as unknown }),
    );
    expect(() => chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested: 500n, checkpoint: undefined, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: false })).toThrow(/has delivered up to 0\/190/);
    expect(chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested: 500n, checkpoint: undefined, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: true })).toBe(500n);
  });

  // Without --publication, the printed republish filtered with the default publication's row filter (or none).
  it("names the relay's publication in every republish its refusals print", () => {
    const hint = (f: () => unknown): string => {
      try {
        f();
      } catch (err) {
        return (err as { hint: string }).hint;
      }
      return expect.unreachable('not refused');
    };
    const inputs = { slot: 's', republish: { publication: 'orders_pub' }, checkpoint: undefined, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: true };
    expect(hint(() => chooseStart({ ...inputs, requested: 300n }))).toContain('outbox-relay republish --since <timestamp> --publication orders_pub (or --ids <id,…> in place of --since)');
    expect(hint(() => chooseStart({ ...inputs, requested: undefined, checkpoint: 2000n, checkpointCommitTimeMs: Date.parse('2026-12-05T08:00:00.000Z') }))).toContain('outbox-relay republish --since 2026-12-05T07:59:00.000Z --publication orders_pub');
    expect(foreignCheckpoint('s', { publication: 'orders_pub' }, 'ckpt', { lsn: 0x500n, systemId: '111' }, '222')!.hint).toContain('outbox-relay republish --since <time> --publication orders_pub');
  });

  it('refuses a checkpoint written against another PostgreSQL server (another system identifier); takes one of this server or of an older version (none recorded)', () => {
    const refused = foreignCheckpoint('s', { publication: 'orders_pub' }, 'ckpt', { lsn: 0x500n, systemId: '111' }, '222');
    expect(refused).toMatchObject({ code: 'CHECKPOINT_FOREIGN', retriable: false, details: { checkpointSystemId: '111', systemId: '222' } });
    expect(refused!.message).toContain('"s" in "ckpt"');
    expect(foreignCheckpoint('s', { publication: 'orders_pub' }, 'ckpt', { lsn: 0x500n, systemId: '222' }, '222')).toBeUndefined();
    expect(foreignCheckpoint('s', { publication: 'orders_pub' }, 'ckpt', { lsn: 0x500n }, '222')).toBeUndefined();
    const stored = decodeCheckpoint(encodeCheckpoint({ slot: 's', lsn: 0x500n, commitTimeMs: undefined, writtenAtMs: 0, guarantee: 'at-least-once', systemId: '222' }), 'ckpt');
    expect(stored.systemId).toBe('222');
  });

  it('records the timeline the position was confirmed on: the store\'s once a session streams, else the checkpoint\'s; an unreadable one as none', () => {
    const store = new KafkaCheckpointStore({} as never, 'ckpt', ['k:9092']);
    const checkpoint: Checkpoint = { slot: 's', lsn: 0x500n, commitTimeMs: undefined, writtenAtMs: 0, guarantee: 'at-least-once', timeline: 1 };
    const written = () => decodeCheckpoint(store.message(checkpoint).value!, 'ckpt');
    // A record rewritten before any session streamed (the replay window's, at the start) keeps the timeline it had.
    expect(written().timeline).toBe(1);
    store.timeline = 2;
    expect(written().timeline).toBe(2);
    for (const timeline of ['2', 0, 1.5]) expect(decodeCheckpoint(Buffer.from(JSON.stringify({ slot: 's', lsn: '0/500', timeline })), 'ckpt').timeline).toBeUndefined();
  });

  it('refuses a checkpoint beyond the current WAL end (another server wrote it), with or without --start-lsn', () => {
    expect(chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested: undefined, checkpoint: 1000n, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: true })).toBe(1000n);
    for (const requested of [undefined, 500n]) {
      expect(() => chooseStart({ slot: 's', republish: { publication: 'outbox_relay' }, requested, checkpoint: 1001n, slotConfirmed: 400n, walEnd: 1000n, forwardSkip: true })).toThrow(
        expect.objectContaining({ code: 'CHECKPOINT_AHEAD_OF_WAL', message: expect.stringContaining('is at 0/3E9, but PostgreSQL has written WAL only up to 0/3E8') as unknown, hint: expect.stringContaining('--checkpoint-topic') as unknown }),
      );
    }
  });

  it('at-most-once refuses a replay window, set or recorded, and takes 0 (which releases a recorded one)', async () => {
    const written: Checkpoint[] = [];
    const store = recordingStore(written);
    const checkpoint: Checkpoint = { slot: 's', lsn: 0x5000n, commitTimeMs: 0, writtenAtMs: 0, guarantee: 'at-least-once', replayWindow: '6h' };
    const logger = pino({ level: 'silent' });
    const recorded = new RecordedReplayWindow(undefined, store, logger, 'at-most-once').resolve(checkpoint, { confirmed: 0x1000n, active: false });
    await expect(recorded).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('recorded in the checkpoint') as unknown, hint: expect.stringContaining('replayWindow (--replay-window / OUTBOX_RELAY_REPLAY_WINDOW) 0') as unknown });
    const set = new RecordedReplayWindow(parseReplayWindow('2GiB'), store, logger, 'at-most-once').resolve(undefined, { confirmed: 0x1000n, active: false });
    await expect(set).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('2GiB, set by replayWindow') as unknown });
    const released = new RecordedReplayWindow(parseReplayWindow('0'), store, logger, 'at-most-once');
    await released.resolve(checkpoint, { confirmed: 0x1000n, active: false });
    expect(written.map((c) => c.replayWindow)).toEqual(['0']);
    expect(released.report(0x5000n)).toBe(0x5000n);
    // at-least-once keeps it.
    await expect(new RecordedReplayWindow(undefined, store, logger, 'at-least-once').resolve(checkpoint, { confirmed: 0x1000n, active: false })).resolves.toBeUndefined();
  });

  it('a standby (the slot streams to another instance) records no new window: its checkpoint would overwrite newer ones', async () => {
    const rewrites: Checkpoint[] = [];
    const store = {
      replayWindow: undefined as string | undefined,
      topic: 'checkpoints',
      message: (c: Checkpoint) => c,
      client: { producer: () => ({ send: async (_topic: string, c: Checkpoint) => void rewrites.push(c), close: async () => undefined }) },
    } as unknown as KafkaCheckpointStore;
    const checkpoint: Checkpoint = { slot: 's', lsn: 0x5000n, commitTimeMs: 0, writtenAtMs: 0, guarantee: 'exactly-once', replayWindow: '1h' };
    const logger = pino({ level: 'silent' });
    await new RecordedReplayWindow(parseReplayWindow('2h'), store, logger, 'exactly-once').resolve(checkpoint, { confirmed: 0x1000n, active: true });
    expect(rewrites).toEqual([]);
    // Once it holds the slot, the same decision records the window (with the checkpoint it read then).
    await new RecordedReplayWindow(parseReplayWindow('2h'), store, logger, 'exactly-once').resolve(checkpoint, { confirmed: 0x1000n, active: false });
    expect(rewrites.map((c) => c.lsn)).toEqual([0x5000n]);
  });

  it('refuses a recorded window it cannot read unless replayWindow is set, which replaces it (with the change logged)', async () => {
    const rewrites: Checkpoint[] = [];
    const store = recordingStore(rewrites);
    const checkpoint: Checkpoint = { slot: 's', lsn: 0x5000n, commitTimeMs: 0, writtenAtMs: 0, guarantee: 'at-least-once', replayWindow: '3 fortnights' };
    const lines: { msg: string; previousReplayWindow?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
    await expect(new RecordedReplayWindow(undefined, store, logger, 'at-least-once').resolve(checkpoint, { confirmed: 0x1000n, active: false })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('records replay window "3 fortnights", which this relay cannot read') as unknown,
      hint: expect.stringContaining('--replay-window') as unknown,
    });
    expect(rewrites).toEqual([]);
    const window = new RecordedReplayWindow(parseReplayWindow('2h'), store, logger, 'at-least-once');
    await window.resolve(checkpoint, { confirmed: 0x1000n, active: false });
    expect(rewrites.map((c) => c.replayWindow)).toEqual(['2h']);
    expect(lines.find((l) => l.previousReplayWindow !== undefined)?.previousReplayWindow).toBe('3 fortnights');
  });
});
