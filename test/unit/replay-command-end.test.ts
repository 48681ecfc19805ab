import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Lsn } from '../../src/lsn.js';
import type { CreateDelivery, Delivery, DeliveryCallbacks } from '../../src/sink/delivery.js';
import type { RelayObserver } from '../../src/pipeline/observer.js';

/** What Kafka acknowledged by the time the fake relay's drain ends: the end LSN it confirms. */
let acknowledgedTo: Lsn = 0n;
/** The drain confirms acknowledgedTo, then never ends (Kafka stuck): only a second signal or the watchdog ends it. */
let drainStuck = false;
/** Called once the command runs the relay: its signal handlers are in place. */
let running: () => void = () => undefined;

/** How often the command, done, armed its exit for clients that do not let go (in this process it must not exit). */
let exitsArmed = 0;
vi.mock('../../src/process-exit.js', async (original) => ({ ...(await original<typeof import('../../src/process-exit.js')>()), exitSoonAfterClose: () => void exitsArmed++ }));

// PostgreSQL (the WAL position at start, the slot), the producer and the delivery strategy, as fakes.
vi.mock('../../src/ops/connection.js', () => ({
  withClient: async (_config: unknown, _what: string, work: (client: unknown) => Promise<unknown>) => work({ query: async () => ({ rows: [{ lsn: '0/1000' }] }) }),
}));
vi.mock('../../src/ops/slots.js', () => ({ findSlot: async () => undefined }));
vi.mock('../../src/sink/create-sink.js', () => ({ createSink: async () => ({ connect: async () => undefined, send: async () => undefined, close: async () => undefined }) }));
vi.mock('../../src/pipeline/delivery-strategy.js', () => ({
  deliveryStrategy: () => ({
    sink: {},
    createDelivery: (): Delivery =>
      ({ inFlightEvents: 0, inFlightBytes: 0, windowFullMs: 0, windowFullSinceMs: undefined, openSession() {}, push: () => true, committed() {}, endSession() {}, whenIdle: async () => undefined, stop() {} }) as never,
    startPosition: async () => undefined,
    resumePosition: undefined,
    reportPosition: (lsn: Lsn) => lsn,
    observer: {},
    close: async () => undefined,
  }),
}));

/**
 * A relay that streams one transaction inside the bound (commit LSN 0/100, end 0/180) and the first event of one
 * past it (0/300), which the bound refuses and so stops the relay; its drain then confirms what Kafka
 * acknowledged (acknowledgedTo), as Relay.stop does when the grace period runs out first.
 */
vi.mock('../../src/pipeline/relay.js', () => ({
  SHUTDOWN_MARGIN_MS: 5000,
  Relay: class {
    deliveredLsn: Lsn = 0x50n;
    private readonly delivery: Delivery;
    private readonly observer: RelayObserver;
    private stopped!: () => void;
    private readonly stopping = new Promise<void>((resolve) => (this.stopped = resolve));
    constructor(_config: unknown, deps: { createDelivery: CreateDelivery; observer: RelayObserver }) {
      this.delivery = deps.createDelivery({} as DeliveryCallbacks);
      this.observer = deps.observer;
    }
    async run() {
      running();
      const txn = (commitLsn: Lsn) => ({ commitLsn, commitTimeMs: 0, xid: 1, readAtMs: 0, endLsn: undefined as Lsn | undefined, pending: 0, tracker: {} });
      const inside = txn(0x100n);
      this.delivery.push({ txn: inside } as never);
      inside.endLsn = 0x180n;
      this.delivery.committed(inside as never);
      this.delivery.push({ txn: txn(0x300n) } as never);
      await this.stopping;
      return { state: 'stopped' };
    }
    async stop() {
      if (acknowledgedTo > this.deliveredLsn) {
        this.deliveredLsn = acknowledgedTo;
        this.observer.confirmed?.(acknowledgedTo, 0);
      }
      if (drainStuck) return new Promise<void>(() => undefined);
      this.stopped();
    }
  },
}));

async function replay(): Promise<{ exitCode: number | undefined; summary: Record<string, unknown> }> {
  // Fresh modules: each replay is a process of its own, which prints one JSON document (cli/json-document.ts).
  vi.resetModules();
  const { replayCommand } = await import('../../src/cli/commands/replay.js');
  let out = '';
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  try {
    await replayCommand().parseAsync(['--start-lsn', '0/50', '--to-lsn', '0/200', '--kafka-brokers', 'b:9092', '--log-level', 'fatal', '--json'], { from: 'user' });
  } finally {
    write.mockRestore();
  }
  return { exitCode: process.exitCode as number | undefined, summary: JSON.parse(out) as Record<string, unknown> };
}

afterEach(() => {
  process.exitCode = undefined;
  drainStuck = false;
  running = () => undefined;
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  vi.restoreAllMocks();
});

describe('replay: the end', () => {
  it('finishes, exit 0, once Kafka acknowledged every transaction of the range', async () => {
    acknowledgedTo = 0x180n;
    exitsArmed = 0;
    const { exitCode, summary } = await replay();
    // A kafkajs request to a broker that stopped answering kept replay up until the watchdog after its last line.
    expect(exitsArmed).toBe(1);
    expect(summary).toMatchObject({ finished: true, confirmedLsn: '0/180', lastCommitLsn: '0/200' });
    expect(exitCode).toBe(0);
  });

  it('does not say finished (exit 0) when the drain ended with a transaction of the range unacknowledged', async () => {
    // The grace period ran out (Kafka slow or down): 0/100 was read to its commit but never acknowledged.
    acknowledgedTo = 0n;
    const { exitCode, summary } = await replay();
    expect(summary).toMatchObject({ finished: false, confirmedLsn: '0/50' });
    expect(summary.error).toMatchObject({ code: 'INTERRUPTED', fix: expect.stringContaining('--start-lsn 0/50 --to-lsn 0/200') as unknown });
    expect(exitCode).toBe(1);
  });

  it('cut short by a second signal, says how to finish the replay from where Kafka acknowledged it, not that a restart sends it again', async () => {
    // The bound stops the relay at 0/300; its drain confirms 0/60 and hangs there.
    acknowledgedTo = 0x60n;
    drainStuck = true;
    vi.resetModules();
    const { replayCommand } = await import('../../src/cli/commands/replay.js');
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out += String(chunk);
      return true;
    });
    vi.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      throw new Error(`exited ${code}`);
    }) as never);
    const started = new Promise<void>((resolve) => (running = resolve));
    void replayCommand().parseAsync(['--start-lsn', '0/50', '--to-lsn', '0/200', '--kafka-brokers', 'b:9092', '--log-level', 'fatal', '--json'], { from: 'user' });
    await started;
    process.emit('SIGINT', 'SIGINT');
    expect(() => process.emit('SIGINT', 'SIGINT')).toThrow('exited 1');
    const error = (JSON.parse(out) as { error: { code: string; fix: string } }).error;
    expect(error.code).toBe('SHUTDOWN_FORCED');
    // Before: the relay's fix, "nothing is lost: events not yet acknowledged are sent again after the restart".
    expect(error.fix).toContain('outbox-relay replay --start-lsn 0/60 --to-lsn 0/200');
    expect(error.fix).not.toContain('after the restart');
  });
});
