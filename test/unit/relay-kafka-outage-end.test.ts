import { describe, expect, it, vi } from 'vitest';
import { AckTracker } from '../../src/checkpoint/ack-tracker.js';
import type { Guarantee } from '../../src/config/guarantee-config.js';
import { RelayError } from '../../src/errors.js';
import type { TimelinePosition } from '../../src/source/timeline.js';
import type { Lsn } from '../../src/lsn.js';
import type { RelayOutcome } from '../../src/pipeline/relay.js';
import type { OutboxEvent } from '../../src/route/event.js';
import type { Delivery } from '../../src/sink/delivery.js';
import type { Producing } from '../../src/sink/delivery-engine.js';
import { FAST_RETRY, engineDelivery, settle } from '../support/fakes/engine-harness.js';
import { FakeSink, kafkaDown } from '../support/fakes/fake-sink.js';
import { capturingLogger, relayConfig } from '../support/fakes/relay-setup.js';

/** What a session streams: `transaction` decodes one outbox transaction to its commit, `keepalive` one from beyond the start. */
interface Stream {
  transaction(name: string, count: number): void;
  keepalive(): void;
}

/** What each started session streams, by its number (0 first); past the end: nothing. */
let streams: ((stream: Stream) => void)[] = [];
let sessions = 0;
/** Sessions whose server got past their start (Session.progressed). */
let progressed = 0;

// A replication session over the relay's real delivery: it opens, streams what `streams` says from its start
// position into the delivery as Session does (events, then `progressed` at the commit, then the commit), and ends
// when the relay closes it (a source restart, a stop).
vi.mock('../../src/pipeline/session.js', () => ({
  Session: class {
    private tracker!: AckTracker;
    private onProgress!: () => void;
    private onEnd!: (error: RelayError | undefined) => void;
    readonly progressed = new Promise<void>((resolve) => (this.onProgress = resolve));
    readonly ended = new Promise<RelayError | undefined>((resolve) => (this.onEnd = resolve));
    readonly streaming = Promise.resolve();
    readonly receiveTimeoutMs = 0;
    readonly reportable = true;
    readonly reached = 0n;
    readonly reported = undefined;
    readonly backendPid = null;
    constructor(
      _config: unknown,
      private readonly delivery: Delivery,
    ) {}
    get confirmed(): Lsn {
      return this.tracker.confirmed;
    }
    async open(): Promise<void> {}
    start(lastConfirmed: TimelinePosition, requested: TimelinePosition | undefined): Lsn {
      const start = requested?.lsn ?? lastConfirmed.lsn;
      this.tracker = new AckTracker(start);
      this.delivery.openSession(this.tracker);
      const script = streams[sessions++];
      let lsn = start;
      setImmediate(() =>
        script?.({
          transaction: (name, count) => {
            const txn = this.tracker.begin((lsn += 10n), 0, 1);
            for (let i = 0; i < count; i++) {
              txn.tracker.add(txn);
              const event: OutboxEvent = { topic: 't', key: Buffer.from(`${name}.${i}`), value: Buffer.from('{}'), headers: {}, eventId: `${name}.${i}`, size: 10, txn };
              this.delivery.push(event);
            }
            this.progress();
            this.tracker.commit(txn, (lsn += 10n));
            this.delivery.committed(txn);
          },
          keepalive: () => this.progress(),
        }),
      );
      return start;
    }
    private progress(): void {
      progressed++;
      this.onProgress();
    }
    /** at-most-once counts each batch and reports its position before the hand-off: held at once here. */
    async handOff(acknowledge: () => void): Promise<boolean> {
      acknowledge();
      return true;
    }
    endIntake(): Lsn | undefined {
      return undefined;
    }
    async close(): Promise<void> {
      this.onEnd(undefined);
    }
  },
}));

const { Relay } = await import('../../src/pipeline/relay.js');

/**
 * A relay over a real delivery engine and `sink`, its checkpoint read the sink's last commit (0x5000 before any):
 * runs until `done` holds (then stopped) or the relay ends; its outcome, lines and readiness (producerConnected) after.
 */
async function run(guarantee: Guarantee, sink: FakeSink, done: () => boolean, maxDurationMs = 60_000) {
  sessions = 0;
  progressed = 0;
  const { logger, lines } = capturingLogger('debug');
  const ready: boolean[] = [];
  const retry = { ...FAST_RETRY, maxDelayMs: 2, maxDurationMs };
  const producing: Producing = guarantee === 'exactly-once' ? { guarantee, sink, slot: 's' } : { guarantee, sink };
  const checkpoint = async () => ({ lsn: sink.commits.at(-1)?.lsn ?? 0x5000n, timeline: undefined });
  const relay = new Relay(relayConfig(retry) as never, {
    logger,
    sink,
    createDelivery: engineDelivery(producing, retry),
    startPosition: checkpoint,
    resumePosition: checkpoint,
    reportPosition: (lsn: Lsn) => lsn,
    observer: { producerConnected: (connected: boolean) => ready.push(connected) },
  });
  const running = relay.run();
  let outcome: RelayOutcome | undefined;
  void running.then((o) => (outcome = o));
  while (!outcome && !done()) await settle();
  if (!outcome) {
    await settle(20);
    await relay.stop({ openTransaction: 'drop' });
    outcome = await running;
  }
  const said = (msg: string) => lines.filter((l) => l.msg === msg).length;
  return {
    outcome,
    relay,
    // at-most-once's outage starts with its first dropped batch, in words of its own.
    started: said('Kafka unavailable: holding the confirmed position and retrying') + said('Kafka refused a batch: at-most-once drops it, it is not retried (delivery.guarantee=at-most-once)'),
    ended: said('Kafka available again: delivery resumed'),
    ready: ready.at(-1),
    lines,
  };
}

describe('Relay, exactly-once: when delivery\'s Kafka outage ends', () => {
  it('an ambiguous commit that went through, a restart with nothing to send again: the session that streams past its start ends the outage, ready again', async () => {
    // Session 1's commit reaches Kafka but its answer does not: the transaction is aborted, the source restarts and
    // reads the checkpoint (moved by that commit); session 2 finds nothing after it, only a keepalive beyond it.
    streams = [(s) => s.transaction('t', 2), (s) => s.keepalive()];
    const sink = new FakeSink().scriptCommits('ambiguous');
    const { outcome, relay, started, ended, ready } = await run('exactly-once', sink, () => progressed === 2);
    expect(sessions).toBe(2);
    expect(sink.claims).toBe(2);
    expect(sink.visible).toEqual(['t.0', 't.1']);
    expect({ started, ended, ready }).toEqual({ started: 1, ended: 1, ready: true });
    // Nothing was confirmed past what Kafka committed: the checkpoint the second session started from.
    expect(relay.deliveredLsn).toBe(sink.commits[0]!.lsn);
    expect(outcome.state).toBe('stopped');
  });

  it('the same with an idle server, whose keepalives never pass the start: the outage ends once the session streamed for its receive timeout plus retry.maxDelay', async () => {
    streams = [(s) => s.transaction('t', 2)];
    const sink = new FakeSink().scriptCommits('ambiguous');
    let secondAt: number | undefined;
    // Here the receive timeout is 0 and retry.maxDelay 2 ms: 50 ms of a second session that says nothing.
    const { started, ended, ready } = await run('exactly-once', sink, () => sessions === 2 && Date.now() - (secondAt ??= Date.now()) > 50);
    expect(progressed).toBe(1);
    // Before (the end tied to progress alone): { started: 1, ended: 0, ready: false } until the next outbox event.
    expect({ started, ended, ready }).toEqual({ started: 1, ended: 1, ready: true });
  });

  it('events to send again in every restart (an event topic Kafka keeps refusing while the claim and the checkpoint read work): one outage, never ended between restarts, RETRIES_EXHAUSTED after retry.maxDuration', async () => {
    streams = Array.from({ length: 1000 }, () => (s: Stream) => s.transaction('t', 1));
    const sink = new FakeSink();
    sink.send = () => Promise.reject(kafkaDown());
    const startedAt = Date.now();
    // Stopped after ten times the bound if it never gave up (an outage ended and started again at each restart).
    const { outcome, started, ended, ready } = await run('exactly-once', sink, () => Date.now() - startedAt > 2000, 200);
    expect(outcome).toMatchObject({ state: 'failed', error: { code: 'RETRIES_EXHAUSTED' } });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(200);
    // Each restarted session streamed past its start with the events pending: the outage went on regardless.
    expect(progressed).toBeGreaterThan(2);
    expect(sink.claims).toBe(sessions);
    expect({ started, ended, ready }).toEqual({ started: 1, ended: 0, ready: false });
    expect(sink.commits).toEqual([]);
  });

  it('a transaction to send again whose events come after a keepalive beyond the start (a large one, which PostgreSQL sends only once decoded to its commit), its commit failing every time: one outage, RETRIES_EXHAUSTED after retry.maxDuration', async () => {
    streams = Array.from({ length: 1000 }, () => (s: Stream) => {
      s.keepalive();
      setTimeout(() => s.transaction('t', 1), 5);
    });
    const sink = new FakeSink();
    sink.commit = () => Promise.reject(kafkaDown());
    const startedAt = Date.now();
    // Stopped after ten times the bound if it never gave up.
    const { outcome, started, ended, ready } = await run('exactly-once', sink, () => Date.now() - startedAt > 2000, 200);
    // Before: each restart's keepalive found delivery idle (the events not there yet) and ended the outage, so the
    // bound never ran out: the relay was still retrying when stopped at 2 s, with 333 outages started and ended
    // (a warn and an info line per restart).
    expect(outcome).toMatchObject({ state: 'failed', error: { code: 'RETRIES_EXHAUSTED' } });
    expect(progressed).toBeGreaterThan(2);
    expect({ started, ended, ready }).toEqual({ started: 1, ended: 0, ready: false });
    expect(sink.commits).toEqual([]);
  });

  it('at-least-once: the outage still ends when Kafka acknowledges the batch sent again, once', async () => {
    streams = [(s) => s.transaction('t', 2)];
    const sink = new FakeSink().scriptSends(kafkaDown());
    const { outcome, started, ended, ready } = await run('at-least-once', sink, () => sink.written.length === 2);
    expect(sessions).toBe(1);
    expect(sink.written).toEqual(['t.0', 't.1']);
    expect({ started, ended, ready }).toEqual({ started: 1, ended: 1, ready: true });
    expect(outcome.state).toBe('stopped');
  });
});

describe('Relay: the Kafka outage line', () => {
  it.each(['at-least-once', 'at-most-once'] as const)('%s: carries the failure\'s fix (a grant a refusal names), not only its code and error', async (guarantee) => {
    streams = [(s) => s.transaction('t', 1)];
    const refused = new RelayError('KAFKA_AUTH', 'the brokers refused the idempotent producer an id (fake)', { retriable: true, hint: 'grant IdempotentWrite on the cluster (fake)' });
    const sink = new FakeSink().scriptSends(refused);
    const { lines } = await run(guarantee, sink, () => sink.calls.length > 0);
    const started = lines.filter((l) => l.level === 40 && l.code === 'KAFKA_AUTH');
    expect(started).toEqual([expect.objectContaining({ err: 'the brokers refused the idempotent producer an id (fake)', fix: 'grant IdempotentWrite on the cluster (fake)' })]);
  });
});

describe('Relay, at-most-once: when delivery\'s Kafka outage ends with an idle outbox', () => {
  // A batch Kafka refuses is dropped and opens the outage; before, only the next acknowledged batch ended it, so with
  // nothing more to send the relay stayed not ready, without an end line: { started: 1, ended: 0, ready: false }.
  it('Kafka back: every partition of the dropped batch\'s topic led again ends the outage once, ready, nothing sent again', async () => {
    streams = [(s) => s.transaction('t', 2)];
    const sink = new FakeSink().scriptSends(kafkaDown());
    sink.leaders = kafkaDown();
    // Kafka answers again after three checks that found it down. Flipped by the check itself: flipped where the run
    // polls (between rounds of immediates), a loaded host could make the third and fourth checks in one round, and
    // the fourth found Kafka still down.
    const checkLeaders = sink.checkLeaders.bind(sink);
    sink.checkLeaders = (topics) => {
      if (sink.leaderChecks.length === 3) sink.leaders = 'ok';
      return checkLeaders(topics);
    };
    const startedAt = Date.now();
    const { outcome, started, ended, ready } = await run('at-most-once', sink, () => {
      // The time is a safety stop only: on a loaded machine four checks took longer than a second.
      return sink.leaderChecks.length > 3 || Date.now() - startedAt > 10_000;
    });
    expect({ started, ended, ready }).toEqual({ started: 1, ended: 1, ready: true });
    expect(sink.leaderChecks).toEqual([['t'], ['t'], ['t'], ['t']]);
    // Dropped, as at-most-once's contract says: neither re-sent nor kept.
    expect(sink.calls).toHaveLength(1);
    expect(sink.written).toEqual([]);
    expect(outcome.state).toBe('stopped');
  });

  it('Kafka still down: not ready, no end line, checked again with backoff until retry.maxDuration of it gives up', async () => {
    streams = [(s) => s.transaction('t', 2)];
    const sink = new FakeSink().scriptSends(kafkaDown());
    sink.leaders = kafkaDown();
    const startedAt = Date.now();
    // Stopped after ten times the bound if it never gave up. A bound of 1 s, not less: the checks counted below must
    // fit in it on a loaded machine too (at 200 ms a unit run beside the integration files saw too few).
    const { outcome, started, ended, ready } = await run('at-most-once', sink, () => Date.now() - startedAt > 10_000, 1000);
    expect(sink.leaderChecks.length).toBeGreaterThan(2);
    expect({ started, ended, ready }).toEqual({ started: 1, ended: 0, ready: false });
    expect(outcome).toMatchObject({ state: 'failed', error: { code: 'RETRIES_EXHAUSTED' } });
  });
});
