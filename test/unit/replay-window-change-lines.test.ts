import { describe, expect, it, vi } from 'vitest';
import { parseReplayWindow } from '../../src/checkpoint/replay-window.js';
import { capturingLogger } from '../support/fakes/relay-setup.js';
import { strategyConfig } from '../support/fakes/strategy-config.js';

// The checkpoint topic (a checkpoint at 0/9000 recording a 6h window) refuses every write, and the slot's bounds
// (kept behind by that window), as fakes: no broker, no PostgreSQL.
vi.mock('../../src/checkpoint/create-checkpoint-client.js', async () => {
  const { windowedCheckpointClient } = await import('../support/fakes/windowed-checkpoint.js');
  const refusing = {
    send: async () => {
      throw new Error('no broker answers (fake)');
    },
    close: async () => undefined,
  };
  return { createCheckpointClient: () => windowedCheckpointClient(refusing) };
});
vi.mock('../../src/checkpoint/start-position.js', async (original) => (await import('../support/fakes/slot-bounds.js')).startPositionWithSlot(original));

const { deliveryStrategy } = await import('../../src/pipeline/delivery-strategy.js');

describe('replayWindow set to another window than the recorded one, at a start that is retried', () => {
  it('the change, and the checkpoint that cannot record it yet, are each one warn line; the attempts after the first say them at debug', async () => {
    const { logger, lines } = capturingLogger('debug');
    const base = strategyConfig(undefined, 'at-least-once') as { values: Record<string, unknown> };
    const config = { ...base, values: { ...base.values, replayWindow: parseReplayWindow('1h') } } as never;
    const strategy = deliveryStrategy(config, logger, { plainSink: {} as never });
    // As the relay does when the session's start fails after the position was decided: each attempt decides it again.
    for (let attempt = 0; attempt < 3; attempt++) expect((await strategy.startPosition())?.lsn).toBe(0x9000n);
    await strategy.close();
    const said = (prefix: string) => {
      const matching = lines.filter((l) => l.msg.startsWith(prefix));
      return { warn: matching.filter((l) => l.level === 40).length, debug: matching.filter((l) => l.level === 20).length };
    };
    // Before: { warn: 3, debug: 0 } each, a warn line per attempt.
    expect({ changed: said('replay window changed from 6h to 1h'), unrecorded: said('cannot record the new replay window in the checkpoint yet') }).toEqual({
      changed: { warn: 1, debug: 2 },
      unrecorded: { warn: 1, debug: 2 },
    });
  });
});
