import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../../src/checkpoint/checkpoint.js';
import type { CheckpointClient, CheckpointRecord } from '../../src/checkpoint/checkpoint-client.js';
import type { SlotBounds } from '../../src/checkpoint/start-position.js';
import { capturingLogger } from '../support/fakes/relay-setup.js';
import { strategyConfig } from '../support/fakes/strategy-config.js';
import { metricValue } from '../support/ops-http.js';

const HOUR = 3_600_000;

/** The slot's checkpoint in the topic (the instance holding the slot writes it) and the slot's bounds, as the test sets them. */
let stored: Checkpoint;
let slot: SlotBounds;
/** What this relay wrote to the checkpoint topic. */
const written: CheckpointRecord[] = [];

// The checkpoint topic and the slot's bounds as fakes: no broker, no PostgreSQL.
vi.mock('../../src/checkpoint/create-checkpoint-client.js', () => ({
  createCheckpointClient: (): CheckpointClient => ({
    createTopic: async () => undefined,
    readAll: async (_topic, onRecord) => {
      onRecord({ key: 's', value: encodeCheckpoint(stored), partition: 0 });
      return true;
    },
    producer: () => ({ send: async (_topic: string, record: CheckpointRecord) => void written.push(record), close: async () => undefined }),
  }),
}));
vi.mock('../../src/checkpoint/start-position.js', async (original) => ({
  ...(await original<typeof import('../../src/checkpoint/start-position.js')>()),
  slotBounds: async () => slot,
}));

const { deliveryStrategy } = await import('../../src/pipeline/delivery-strategy.js');

const record = (lsn: bigint, replayWindow: string, replaySamples?: Checkpoint['replaySamples']): Checkpoint => ({
  slot: 's',
  lsn,
  commitTimeMs: 0,
  writtenAtMs: 0,
  guarantee: 'at-least-once',
  replayWindow,
  systemId: '7',
  ...(replaySamples && { replaySamples }),
});

/**
 * This relay starts from a checkpoint at 0/9000 recording `ownWindow`, streams, and is demoted to a standby; the
 * other instance then holds the slot, writes `other` and leaves the slot at `otherSlot`; this relay takes it back.
 */
async function takeBack(ownWindow: string, other: Checkpoint, otherSlot: bigint) {
  written.length = 0;
  const registry = new Registry();
  const strategy = deliveryStrategy(strategyConfig(undefined, 'at-least-once'), capturingLogger('silent').logger, { plainSink: {} as never, registry });
  stored = record(0x9000n, ownWindow);
  slot = { confirmed: 0x1000n, active: false, walEnd: 0xa000n, systemId: '7' };
  await strategy.startPosition();
  strategy.streamingOn(1, 0x1000n);
  strategy.observer.stateChanged?.('streaming');
  strategy.reportPosition(0x9000n);

  strategy.observer.stateChanged?.('reconnecting');
  strategy.observer.stateChanged?.('standby');
  stored = other;
  slot = { confirmed: otherSlot, active: false, walEnd: 0x20000n, systemId: '7' };
  const resumed = await strategy.resumePosition();
  strategy.streamingOn(1, otherSlot);
  strategy.observer.stateChanged?.('streaming');
  const windowBytes = async () => metricValue(await registry.metrics(), 'outbox_relay_replay_window_bytes');
  return { strategy, resumed, windowBytes };
}

describe('replay window after taking the slot back from another instance', () => {
  it("reports the positions the other instance's window holds at the times it delivered them, as a first start does", async () => {
    // The other delivered 0/C000 6h 1m ago and 0/E000 1h ago (its 6h window left the slot at 0/A000), up to 0/F000.
    const now = Date.now();
    const other = record(0xf000n, '6h', [
      { lsn: 0xc000n, atMs: now - 6 * HOUR - 60_000 },
      { lsn: 0xe000n, atMs: now - HOUR },
    ]);
    const { strategy, resumed, windowBytes } = await takeBack('6h', other, 0xa000n);
    expect(resumed?.lsn).toBe(0xf000n);
    // 0/C000 is older than the window: reported. Before: 0/A000, and 20480 bytes: everything the other delivered
    // was stamped with the takeover's time, held 6h more.
    expect(strategy.reportPosition(0xf000n)).toBe(0xc000n);
    expect(await windowBytes()).toBe(0x3000);
    await strategy.close();
  });

  it('keeps the window the other instance recorded (this relay sets none): the slot stays behind, and its checkpoints record that window', async () => {
    // This relay started without a window; the other was given 6h (--replay-window) and recorded it.
    const other = record(0xf000n, '6h', [{ lsn: 0xe000n, atMs: Date.now() - HOUR }]);
    const { strategy, windowBytes } = await takeBack('0', other, 0xa000n);
    // Before: 0/10000 (the delivered position: the WAL the window held released) and 0 bytes.
    expect(strategy.reportPosition(0x10000n)).toBe(0xa000n);
    expect(await windowBytes()).toBe(0x6000);
    // Before: '0', the window released for good in the next start's eyes too.
    strategy.observer.confirmed?.(0x10000n, undefined);
    await strategy.drainEnded(true, Date.now() + 5000);
    const last = decodeCheckpoint(written.at(-1)!.value, 't');
    expect({ lsn: last.lsn, replayWindow: last.replayWindow }).toEqual({ lsn: 0x10000n, replayWindow: '6h' });
    await strategy.close();
  });

  it('releases the window when the other instance recorded 0 (it was told to release it) and this relay sets none', async () => {
    // The other ran with --replay-window 0: no window, it reported its delivered position.
    const { strategy, windowBytes } = await takeBack('6h', record(0xf000n, '0'), 0xf000n);
    // Before: 0/F000 (this relay's own 6h window held the slot again) and 4096 bytes.
    expect(strategy.reportPosition(0x10000n)).toBe(0x10000n);
    expect(await windowBytes()).toBe(0);
    await strategy.close();
  });
});
