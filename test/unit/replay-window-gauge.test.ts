import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import { capturingLogger } from '../support/fakes/relay-setup.js';
import { strategyConfig } from '../support/fakes/strategy-config.js';
import { metricValue } from '../support/ops-http.js';

// The checkpoint topic (a checkpoint at 0/9000 recording a 6h window) and the slot's bounds (at 0/1000, kept behind
// by that window), as fakes: no broker, no PostgreSQL.
vi.mock('../../src/checkpoint/create-checkpoint-client.js', async () => (await import('../support/fakes/windowed-checkpoint.js')).windowedCheckpointModule());
vi.mock('../../src/checkpoint/start-position.js', async (original) => (await import('../support/fakes/slot-bounds.js')).startPositionWithSlot(original));

const { deliveryStrategy } = await import('../../src/pipeline/delivery-strategy.js');

describe('outbox_relay_replay_window_bytes', () => {
  it('reads 0 once the relay is demoted to a standby, as slot_lag_bytes does, until a session of its own streams again', async () => {
    const registry = new Registry();
    const strategy = deliveryStrategy(strategyConfig(undefined, 'at-least-once'), capturingLogger('silent').logger, { plainSink: {} as never, registry });
    await strategy.startPosition();
    // Delivered up to the checkpoint: the 6h window keeps the slot at 0/1000.
    expect(strategy.reportPosition(0x9000n)).toBe(0x1000n);
    const windowBytes = async () => metricValue(await registry.metrics(), 'outbox_relay_replay_window_bytes');
    expect(await windowBytes()).toBe(0x8000);

    strategy.observer.stateChanged?.('reconnecting');
    expect(await windowBytes()).toBe(0x8000);
    // A reconnect found the slot taken by another instance. Before: 32768, this instance's former window.
    strategy.observer.stateChanged?.('standby');
    expect(await windowBytes()).toBe(0);
    strategy.observer.stateChanged?.('reconnecting');
    expect(await windowBytes()).toBe(0);
    strategy.observer.stateChanged?.('streaming');
    expect(await windowBytes()).toBe(0x8000);
    await strategy.close();
  });

  it('after a takeover starts from where the other instance left the slot: no flush position below it, no WAL counted that the slot no longer keeps', async () => {
    const registry = new Registry();
    const strategy = deliveryStrategy(strategyConfig(undefined, 'at-least-once'), capturingLogger('silent').logger, { plainSink: {} as never, registry });
    await strategy.startPosition();
    strategy.streamingOn(1, 0x1000n);
    expect(strategy.reportPosition(0x9000n)).toBe(0x1000n);
    const windowBytes = async () => metricValue(await registry.metrics(), 'outbox_relay_replay_window_bytes');

    // Demoted; the other instance streamed meanwhile and left the slot at 0/5000 (its own window behind its
    // checkpoint). This relay takes the slot back and resumes at 0/B000.
    strategy.observer.stateChanged?.('standby');
    strategy.observer.stateChanged?.('reconnecting');
    strategy.streamingOn(1, 0x5000n);
    strategy.observer.stateChanged?.('streaming');
    // Before: 0/1000 (below the slot's confirmed_flush_lsn) and 40960 bytes (0/B000 - 0/1000).
    expect(strategy.reportPosition(0xb000n)).toBe(0x5000n);
    expect(await windowBytes()).toBe(0x6000);
    await strategy.close();
  });
});
