import { describe, expect, it, vi } from 'vitest';
import { RelayError } from '../../src/errors.js';
import { capturingLogger, idleDelivery } from '../support/fakes/relay-setup.js';
import { strategyConfig } from '../support/fakes/strategy-config.js';

/** PostgreSQL is down for the first two attempts; at the third the slot's bounds are read but the replication connection is refused. */
let slotReads = 0;
let opens = 0;
const pgDown = () => new RelayError('PG_STREAM_FAILED', 'connection refused (fake)', { retriable: true });

// The checkpoint topic (a checkpoint at 0/9000 recording a 6h window), the slot's bounds and the replication
// session, as fakes: no broker, no PostgreSQL.
vi.mock('../../src/checkpoint/create-checkpoint-client.js', async () => (await import('../support/fakes/windowed-checkpoint.js')).windowedCheckpointModule());
vi.mock('../../src/checkpoint/start-position.js', async (original) => ({
  ...(await original<typeof import('../../src/checkpoint/start-position.js')>()),
  slotBounds: async () => {
    if (slotReads++ < 2) throw pgDown();
    return { confirmed: 0x1000n, active: false, walEnd: 0xa000n, systemId: '7' };
  },
}));
vi.mock('../../src/pipeline/session.js', async () => ({ Session: (await import('../support/fakes/relay-setup.js')).haltingSession(() => opens++ < 3) }));

const { deliveryStrategy } = await import('../../src/pipeline/delivery-strategy.js');
const { Relay } = await import('../../src/pipeline/relay.js');

describe('Relay, a start that PostgreSQL fails for a while', () => {
  it('one line when the outage starts and one when it ends; what the attempts decided (the checkpoint read, the start position, the recorded window) once at info, its repeats at debug', async () => {
    const { logger, lines } = capturingLogger('debug');
    const config = { ...(strategyConfig(undefined, 'at-least-once') as object), publication: 'p', shutdownGraceMs: 100 } as never;
    const strategy = deliveryStrategy(config, logger, { plainSink: {} as never });
    const relay = new Relay(config, {
      logger,
      sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined } as never,
      createDelivery: idleDelivery as never,
      startPosition: strategy.startPosition,
      resumePosition: strategy.resumePosition,
      reportPosition: strategy.reportPosition,
    });
    expect(await relay.run()).toMatchObject({ error: { code: 'PG_SLOT_MISSING' } });
    await strategy.close();
    expect(opens).toBe(4);
    const said = (msg: string, level: number) => lines.filter((l) => l.msg === msg && l.level === level).length;
    const decisions = ['checkpoint read', 'start position chosen', 'replay window recorded in the checkpoint kept (set replayWindow explicitly to change it; 0 releases it)'];
    expect({
      started: said('replication connection lost: reconnecting', 40),
      ended: said('replication connection back: streaming resumed', 30),
      decisions: decisions.map((msg) => said(msg, 30)),
    }).toEqual({ started: 1, ended: 1, decisions: [1, 1, 1] });
    // Decided again at every attempt: the checkpoint read at all four, the rest at the two that read the slot.
    expect(decisions.map((msg) => said(msg, 20))).toEqual([3, 1, 1]);
  });
});
