import { describe, expect, it, vi } from 'vitest';
import type { SourceTransaction } from '../../src/checkpoint/ack-tracker.js';
import { RelayError } from '../../src/errors.js';
import type { Lsn } from '../../src/lsn.js';
import type { OutboxEvent } from '../../src/route/event.js';
import type { DeliveryCallbacks, Receipt } from '../../src/sink/delivery.js';
import type { TimelinePosition } from '../../src/source/timeline.js';
import { capturingLogger, FakeSessionFields, idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';

/** Where each session starts (the slot's position after the first session ended, as PostgreSQL held it). */
const starts: Lsn[] = [];
let sessions = 0;
/** What the first session hands off once started. */
let handOffs: () => void = () => undefined;
/** How the first session ends: a lost connection (the relay reconnects) unless the test says otherwise. */
let firstEnd = () => new RelayError('PG_STREAM_FAILED', 'connection lost (fake)', { retriable: true });
/** The sessions whose open finds the slot held by another instance (PG_SLOT_ACTIVE). */
let slotTaken: number[] = [];

// The first session's hand-offs are all withheld (it ends before PostgreSQL was shown to hold their positions), and
// it ends with a lost connection; the second starts at starts[1] and ends the test with a fatal error.
vi.mock('../../src/pipeline/session.js', async () => ({
  Session: class extends FakeSessionFields {
    private readonly n = sessions++;
    ended = new Promise((resolve) =>
      setTimeout(() => resolve(this.n === 0 ? firstEnd() : new RelayError('PG_SLOT_MISSING', 'end of the test (fake)')), 20),
    );
    async open(): Promise<void> {
      if (slotTaken.includes(this.n)) throw new RelayError('PG_SLOT_ACTIVE', 'slot in use (fake)', { retriable: true, details: { activePid: 4242 } });
    }
    start(_lastConfirmed: TimelinePosition): Lsn {
      if (this.n === 0) setTimeout(handOffs, 1);
      return starts[this.n]!;
    }
    async handOff(acknowledge: () => void): Promise<boolean> {
      acknowledge();
      return false;
    }
    endIntake(): Lsn | undefined {
      return undefined;
    }
    async close(): Promise<void> {}
  },
}));

// The other instance lets the slot go at once.
vi.mock('../../src/source/standby-wait.js', () => ({
  StandbyWait: class {
    async untilReleased(): Promise<void> {}
  },
}));

const { Relay } = await import('../../src/pipeline/relay.js');

function txn(endLsn: Lsn | undefined): SourceTransaction {
  return { commitLsn: 0n, commitTimeMs: 0, xid: 1, readAtMs: 0, endLsn, pending: 9, tracker: { acknowledge: () => undefined } } as unknown as SourceTransaction;
}

/** Runs a relay whose first session withholds `events` (`receipts` counted), until it ends. */
async function runWithheld(receipts: Receipt[], events: OutboxEvent[]) {
  const { logger, lines } = capturingLogger('debug');
  const dropped: number[] = [];
  const delivered: number[] = [];
  const relay = new Relay(relayConfig({ initialDelayMs: 1, maxDelayMs: 1, maxDurationMs: 60_000 }) as never, {
    logger,
    sink: { connect: async () => undefined, send: async () => undefined, close: async () => undefined },
    createDelivery: (callbacks: DeliveryCallbacks) => {
      handOffs = () => void callbacks.handOff(receipts, events, undefined);
      return idleDelivery();
    },
    observer: { dropped: (n: number) => void dropped.push(n), delivered: (r: readonly Receipt[]) => void delivered.push(r.length) },
    reportPosition: (lsn: Lsn) => lsn,
  } as never);
  const outcome = await relay.run();
  const said = lines.filter((l) => l.msg.startsWith('at-most-once events withheld'));
  const withheld = said.map((l) => ({ level: l.level, events: l.events ?? l.dropped }));
  return { outcome, dropped, delivered, withheld, said };
}

describe('Relay, at-most-once batches withheld when a session ended', () => {
  it('counts as lost only the events of transactions the next session starts past (PostgreSQL took their position); the rest stream again, neither dropped nor counted delivered', async () => {
    sessions = 0;
    slotTaken = [];
    starts.splice(0, starts.length, 0x1000n, 0x2000n);
    const taken = txn(0x2000n);
    const again = txn(0x3000n);
    const uncommitted = txn(undefined);
    const events = [taken, taken, again, uncommitted].map((t) => ({ txn: t }) as OutboxEvent);
    const receipts = [{ txn: taken, count: 2 }, { txn: again, count: 1 }, { txn: uncommitted, count: 1 }] as Receipt[];
    const { outcome, dropped, delivered, withheld } = await runWithheld(receipts, events);
    expect(outcome).toMatchObject({ state: 'failed', error: { code: 'PG_SLOT_MISSING' } });
    expect({ dropped, delivered }).toEqual({ dropped: [2], delivered: [] });
    expect(withheld).toEqual([
      { level: 30, events: 2 },
      { level: 40, events: 2 },
    ]);
  });

  it('a relay that ends before another session started says how many events it withheld, their ends, and that the next session on the slot streams them again unless PostgreSQL took their position: not counted', async () => {
    sessions = 0;
    slotTaken = [];
    starts.splice(0, starts.length, 0x1000n);
    firstEnd = () => new RelayError('PG_SLOT_MISSING', 'end of the test (fake)');
    const t = txn(0x2000n);
    const { outcome, dropped, withheld, said } = await runWithheld([{ txn: t, count: 3 } as Receipt], [t, t, t].map((x) => ({ txn: x }) as OutboxEvent));
    expect(outcome).toMatchObject({ state: 'failed', error: { code: 'PG_SLOT_MISSING' } });
    expect({ dropped, withheld }).toEqual({ dropped: [], withheld: [{ level: 40, events: 3 }] });
    // Which of them are lost only the next session's startLsn says: the line gives their ends to compare it with.
    expect(said[0]).toMatchObject({
      msg: expect.stringContaining('the next session on the slot streams them again unless PostgreSQL took their position (those ending at or before its startLsn are lost, and counted nowhere') as unknown,
      firstEndLsn: '0/2000',
      lastEndLsn: '0/2000',
      oldestCommitTime: '1970-01-01T00:00:00.000Z',
    });
  });

  it('leaves them to another instance that took the slot meanwhile (it resumed at the slot\'s position), naming their ends: not counted as lost when this relay takes the slot back past them', async () => {
    sessions = 0;
    slotTaken = [1];
    starts.splice(0, starts.length, 0x1000n, 0n, 0x9000n);
    firstEnd = () => new RelayError('PG_STREAM_FAILED', 'connection lost (fake)', { retriable: true });
    const t = txn(0x2000n);
    const later = txn(0x3000n);
    const open = txn(undefined);
    const events = [t, t, later, open].map((x) => ({ txn: x }) as OutboxEvent);
    const { outcome, dropped, withheld, said } = await runWithheld([{ txn: t, count: 2 }, { txn: later, count: 1 }, { txn: open, count: 1 }] as Receipt[], events);
    expect(outcome).toMatchObject({ state: 'failed', error: { code: 'PG_SLOT_MISSING' } });
    expect({ dropped, withheld }).toEqual({ dropped: [], withheld: [{ level: 30, events: 4 }] });
    expect(said[0]).toMatchObject({
      msg: expect.stringContaining('(those ending at or before the startLsn it streams from are lost, and counted nowhere)') as unknown,
      firstEndLsn: '0/2000',
      lastEndLsn: '0/3000',
    });
  });
});
