import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { encodeCheckpoint } from '../../src/checkpoint/checkpoint.js';
import type { CheckpointClient } from '../../src/checkpoint/checkpoint-client.js';
import type { Lsn } from '../../src/lsn.js';
import { strategyConfig } from '../support/fakes/strategy-config.js';

/** The checkpoint stored in the topic: read at start, and again before every later session (exactly-once). */
let stored: Lsn = 0x9000n;

// The checkpoint topic, the slot's bounds and the transactional sink, as fakes: no broker, no PostgreSQL.
vi.mock('../../src/checkpoint/create-checkpoint-client.js', () => ({
  createCheckpointClient: (): CheckpointClient => ({
    createTopic: async () => undefined,
    readAll: async (_topic, onRecord) => {
      onRecord({ key: 's', value: encodeCheckpoint({ slot: 's', lsn: stored, commitTimeMs: 0, writtenAtMs: 0, guarantee: 'exactly-once', replayWindow: '6h' }), partition: 0 });
      return true;
    },
    producer: () => ({ send: async () => undefined, close: async () => undefined }),
  }),
}));
vi.mock('../../src/checkpoint/start-position.js', async (original) => ({
  ...(await original<typeof import('../../src/checkpoint/start-position.js')>()),
  slotBounds: async () => ({ confirmed: 0x1000n, active: false, walEnd: 0xa000n, systemId: '7' }),
}));
vi.mock('../../src/sink/create-sink.js', () => ({
  createTransactionalSink: () => ({ connect: async () => undefined, send: async () => undefined, commit: async () => undefined, abort: async () => undefined, close: async () => undefined }),
}));

const { deliveryStrategy } = await import('../../src/pipeline/delivery-strategy.js');

const config = (startLsn: Lsn | undefined) => strategyConfig(startLsn, 'exactly-once');

describe('exactly-once: where a later session of a replay below the checkpoint starts', () => {
  it('does not jump to the checkpoint the replay started below (that would skip the rest of the replayed range)', async () => {
    stored = 0x9000n;
    const strategy = deliveryStrategy(config(0x2000n), pino({ level: 'silent' }), { plainSink: {} as never });
    // A replay from 0/2000 inside a 6h window, with the checkpoint at 0/9000.
    expect(await strategy.startPosition()).toBe(0x2000n);
    // The replay's Kafka transactions commit the checkpoint at its floor (0/9000), so a later read of it says
    // nothing about how far the replay got: the session after a reconnect or a source restart must start at
    // the relay's own confirmed position (undefined here), not at 0/9000, or 0/2000..0/9000 is never re-sent.
    const resume = await strategy.resumePosition();
    expect(resume === undefined || resume <= 0x2000n).toBe(true);
    // Once the replay passed the checkpoint, a newer one is a commit this run made: a restart resumes there.
    stored = 0x9800n;
    expect(await strategy.resumePosition()).toBe(0x9800n);
  });

  it('a plain start keeps resuming from the checkpoint it started at, and from newer ones', async () => {
    stored = 0x9000n;
    const strategy = deliveryStrategy(config(undefined), pino({ level: 'silent' }), { plainSink: {} as never });
    expect(await strategy.startPosition()).toBe(0x9000n);
    // The relay's confirmed position is the start (0/9000) at least, so a session resuming there misses nothing.
    const resume = await strategy.resumePosition();
    expect(resume === undefined || resume === 0x9000n).toBe(true);
    stored = 0x9800n;
    expect(await strategy.resumePosition()).toBe(0x9800n);
  });
});
