import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import type { RelayConfig, RetryPolicy } from '../../src/config/types.js';
import { RelayError } from '../../src/errors.js';
import { EngineHarness, engineRelay, settle } from '../support/fakes/engine-harness.js';
import { FakeSink, fenced, kafkaDown } from '../support/fakes/fake-sink.js';
import { connectFake, firstTransaction, type FakeWalsender } from '../support/fakes/replication-session.js';
import { beginMessage, commitMessage, insertMessage } from '../support/pgoutput-messages.js';

/** The walsender of the session the relay opened last, and how many it opened. */
let walsender: FakeWalsender | undefined;
let sessions = 0;

// The real session, its open() (connection and pre-flight) replaced: a ReplicationStream over a fake walsender and
// the slot as pre-flight finds it (confirmed at 0/1000), public.outbox as relation 0x4001.
vi.mock('../../src/pipeline/session.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/pipeline/session.js')>();
  return {
    Session: class extends actual.Session {
      override async open(): Promise<void> {
        sessions++;
        walsender = connectFake(this, (this as unknown as { config: RelayConfig }).config, { walEnd: 0x1000n, walSenderTimeoutMs: 0 });
      }
    },
  };
});

const GRACE_MS = 4000;
/** A backoff far longer than the grace: a stop that waits for it meets the grace instead. */
const RETRY: RetryPolicy = { initialDelayMs: 600_000, maxDelayMs: 600_000, maxDurationMs: 3_600_000, recordMaxAttempts: 3, recordMaxDurationMs: 3_600_000 };

const recordTooLarge = () => new RelayError('RECORD_TOO_LARGE', 'MESSAGE_TOO_LARGE (fake)');

const insert = (id: string) => insertMessage([id, 'order', id, 'OrderPlaced', '{}', '{}']);

/**
 * An exactly-once relay (real Relay, Session and DeliveryEngine over a FakeSink) that committed transaction 0/2000
 * (end 0/2010). Its lines at debug and above, the walsender, the sink, run()'s outcome (pending).
 */
async function streamingExactlyOnce() {
  sessions = 0;
  const flags = { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092', 'postgres.receiveTimeout': '0', 'delivery.guarantee': 'exactly-once' };
  const config = { ...loadConfig({ env: {}, flags, required: [] }), retry: RETRY, shutdownGraceMs: GRACE_MS };
  const sink = new FakeSink();
  const { relay, running, lines, states } = engineRelay(config, sink, { guarantee: 'exactly-once', sink, slot: config.slot }, RETRY);
  await vi.waitFor(() => expect(states).toContain('streaming'));
  const server = walsender!;
  firstTransaction(server);
  await vi.waitFor(() => expect(sink.commits.map((c) => c.lsn)).toEqual([0x2010n]));
  return { relay, running, lines, server, sink };
}

/**
 * streamingExactlyOnce(); inside the next transaction, 0/3000, Kafka refuses the produce: the engine drops what it
 * holds, aborts the Kafka transaction and sleeps its backoff before restarting the source. `then` streams what
 * follows the failure; the relay is stopped after it.
 */
async function stopDuringRestartWait(then: (server: FakeWalsender) => void) {
  const { relay, running, lines, server, sink } = await streamingExactlyOnce();
  sink.scriptSends(kafkaDown());
  server.xlog(beginMessage(0x3000n, 2));
  server.xlog(insert('e-2'));
  // Dropped and aborted; the engine now sleeps its backoff (retrying logged the outage's start).
  await vi.waitFor(() => expect(sink.aborts).toBe(1));
  await vi.waitFor(() => expect(lines.map((l) => l.msg)).toContain('Kafka unavailable: holding the confirmed position and retrying'));
  then(server);
  await settle();
  await relay.stop();
  return { outcome: await running, lines, server, sink, relay };
}

describe('Relay, exactly-once: a stop while the delivery waits to restart the source after dropping everything uncommitted', () => {
  it.each([
    [
      'the next event of the open transaction refused, the socket paused (its commit never read)',
      (server: FakeWalsender) => {
        server.xlog(insert('e-3'));
        expect(server.socket.paused).toBe(true);
      },
    ],
    ['no event since, inside the open transaction', (server: FakeWalsender) => expect(server.socket.paused).toBe(false)],
    ['the open transaction read to its commit since', (server: FakeWalsender) => server.xlog(commitMessage(0x3000n, 0x3010n))],
  ])('%s: stops at once, without the false "sent again" and "unacknowledged" lines, reporting no position past the last commit', async (_case, then) => {
    const { outcome, lines, server, sink, relay } = await stopDuringRestartWait(then);
    // Before: the whole grace (the read to a commit the paused socket never brings, or the engine's backoff), then
    // both warn lines, each false (the transaction was aborted: none of it is in Kafka, and nothing was in flight).
    expect(lines.map((l) => l.msg)).not.toContain('stopping: reading the open source transaction to its commit');
    expect(lines.filter((l) => /grace period over/.test(l.msg))).toEqual([]);
    expect(outcome.state).toBe('stopped');
    expect(lines.at(-1)).toMatchObject({ msg: 'stopped', confirmedLsn: '0/2010' });
    // The drain's line names where it confirms to: the last commit, not the end of a transaction it dropped (0/3010,
    // read to its commit in the third case).
    expect(lines.find((l) => l.msg === 'stopping: draining in-flight events')).toMatchObject({ drainToLsn: '0/2010' });
    // The flush position PostgreSQL was sent never passed what Kafka committed, and ends there.
    const committed = sink.commits.at(-1)!.lsn;
    expect(committed).toBe(0x2010n);
    expect(server.statuses.every((s) => s.flushLsn <= committed)).toBe(true);
    expect(server.statuses.at(-1)!.flushLsn).toBe(committed);
    expect(relay.reportedLsn).toBe(committed);
    // No source restart after the stop: one session, and no restart line.
    expect(sessions).toBe(1);
    expect(lines.map((l) => l.msg)).not.toContain('delivery aborted its uncommitted events: streaming again from the checkpoint');
  });
});

describe('Relay, exactly-once: Kafka fails while a stop reads the open source transaction to its commit', () => {
  it.each([
    ['the produce of its next event fails, the abort succeeds', kafkaDown(), []],
    ['the produce of its next event fails, and the abort too', kafkaDown(), [kafkaDown()]],
    // Until 2026-12-07 a refused record's abort retried on delivery's own signal, until the grace period ran out.
    ['Kafka refuses its next event, and the abort fails', recordTooLarge(), [kafkaDown()]],
  ])('%s: the read ends at once, the stop without the backoff, the abort retries or a restart, confirming the last commit', async (_case, sendError, abortSteps) => {
    const { relay, running, lines, server, sink } = await streamingExactlyOnce();
    server.xlog(beginMessage(0x3000n, 2));
    server.xlog(insert('e-2'));
    await vi.waitFor(() => expect(sink.written).toContain('e-2'));
    const stopping = relay.stop();
    await vi.waitFor(() => expect(lines.map((l) => l.msg)).toContain('stopping: reading the open source transaction to its commit'));
    sink.scriptSends(sendError).scriptAborts(...abortSteps);
    server.xlog(insert('e-3'));
    await stopping;
    const outcome = await running;
    // Before: the read waited for a commit (or a restart closing the session) while the engine slept its backoff
    // (or retried the abort), until the grace ran out, with two false warn lines (events of the transaction in
    // Kafka, events unacknowledged: the transaction was aborted, or left to the broker, and confirms nothing).
    expect(lines.filter((l) => /grace period over/.test(l.msg))).toEqual([]);
    expect(lines.find((l) => l.msg === 'stopping: draining in-flight events')).toMatchObject({ drainToLsn: '0/2010' });
    // No retry follows the failure: no outage line saying there would be one.
    expect(lines.map((l) => l.msg)).not.toContain('Kafka unavailable: holding the confirmed position and retrying');
    expect(outcome.state).toBe('stopped');
    expect(lines.at(-1)).toMatchObject({ msg: 'stopped', confirmedLsn: '0/2010' });
    expect(sink.commits.map((c) => c.lsn)).toEqual([0x2010n]);
    expect(server.statuses.every((s) => s.flushLsn <= 0x2010n)).toBe(true);
    expect(sessions).toBe(1);
    expect(lines.map((l) => l.msg)).not.toContain('delivery aborted its uncommitted events: streaming again from the checkpoint');
  });
});

describe('DeliveryEngine, exactly-once: drain() during the backoff before a source restart', () => {
  it.each([
    ['a produce Kafka failed (discard)', () => new FakeSink().scriptSends(kafkaDown())],
    ['fenced (another producer took the transactional id)', () => new FakeSink().scriptSends(fenced())],
    ['a record Kafka refused, retried by a restart (refusedRetry)', () => new FakeSink().scriptSends(new RelayError('RECORD_TOO_LARGE', 'too large (fake)'))],
    // Waiting the backoff before the abort's second attempt: until 2026-12-07 its retries went on until the grace
    // period stopped delivery.
    ['a produce Kafka failed, and the abort after it (retried)', () => new FakeSink().scriptSends(kafkaDown()).scriptAborts(kafkaDown(), kafkaDown())],
    // Until 2026-12-07 a refused record's abort retried on delivery's own signal, until the grace period.
    ['a record Kafka refused, and the abort after it (retried)', () => new FakeSink().scriptSends(recordTooLarge()).scriptAborts(kafkaDown(), kafkaDown())],
  ])('%s: whenIdle resolves at once, and the source is not restarted', async (_case, sink) => {
    const h = new EngineHarness({ guarantee: 'exactly-once', sink: sink(), retry: RETRY });
    h.begin('t', 1);
    await settle(20);
    expect(h.sink.calls).toHaveLength(1);
    let idle = false;
    void h.idle().then(() => (idle = true));
    await settle(20);
    // Waiting its 5-10 min backoff: not idle.
    expect(idle).toBe(false);
    h.engine.drain();
    await settle(20);
    expect(idle).toBe(true);
    expect(h.restarts).toEqual([]);
    expect(h.engine.accepting).toBe(false);
    h.engine.stop();
  });

  // A stop's drain while a record Kafka refused in a request of several events is isolated: no session follows that
  // could use what the probe finds. Before, the probe went on (its backoff, its sends, its aborts' retries, all on
  // delivery's own signal) until it halted on the record, or until the grace period stopped delivery.
  it.each([
    ['before Kafka answered the request', new FakeSink().scriptSends('hang'), (h: EngineHarness) => h.sink.calls[0]!.answer.reject(recordTooLarge()), [['t1.0', 't2.0']], ['claim']],
    ['while the probe waits to try again (an attempt failed otherwise)', new FakeSink().scriptSends(recordTooLarge(), kafkaDown()), () => undefined, [['t1.0', 't2.0'], ['t1.0']], ['produce', 'produce', 'claim']],
    ['while the probe produces an event of it', new FakeSink().scriptSends(recordTooLarge(), 'hang'), (h: EngineHarness) => h.sink.calls[1]!.answer.resolve(), [['t1.0', 't2.0'], ['t1.0']], ['produce', 'claim']],
  ])('a record Kafka refused in a request of several events, drain() %s: nothing more is produced, the abort tells the sink only a claim follows, idle with no halt and no restart', async (_case, sink, then, calls, abortsThen) => {
    const h = new EngineHarness({ guarantee: 'exactly-once', sink, retry: { ...RETRY, recordMaxAttempts: 1 }, limits: { batchMaxEvents: 10 } });
    h.transaction('t1', 1);
    h.transaction('t2', 1);
    await settle(20);
    let idle = false;
    void h.idle().then(() => (idle = true));
    h.engine.drain();
    then(h);
    await settle(20);
    expect(idle).toBe(true);
    expect(h.sink.calls.map((c) => c.ids)).toEqual(calls);
    expect(h.sink.abortsThen).toEqual(abortsThen);
    expect(h.stopped).toEqual([]);
    expect(h.restarts).toEqual([]);
    expect(h.engine.accepting).toBe(false);
    h.engine.stop();
  });

  // The isolation found the record (its last abort began before the stop, and succeeded after): with attempts left,
  // the record's retry line ("retrying; exactly-once halts once the retries are spent") came though no restart
  // follows a stop.
  it.each([
    ['a request of one event, drain() during its abort', new FakeSink().scriptSends(recordTooLarge()).scriptAborts('hang'), ['t1.0']],
    ['a request of several events, drain() during the probe\'s last abort', new FakeSink().scriptSends(recordTooLarge(), 'ok', recordTooLarge()).scriptAborts('ok', 'hang'), ['t1.0', 't2.0']],
  ])('a record Kafka refused, %s: no retry line, idle with no restart', async (_case, sink, ids) => {
    const h = new EngineHarness({ guarantee: 'exactly-once', sink, retry: RETRY, limits: { batchMaxEvents: 10 } });
    for (const id of ids) h.transaction(id.split('.')[0]!, 1);
    await vi.waitFor(() => expect(h.sink.pendingAbort).toBeDefined());
    let idle = false;
    void h.idle().then(() => (idle = true));
    h.engine.drain();
    h.sink.pendingAbort!.resolve();
    await settle(20);
    expect(idle).toBe(true);
    expect(h.recordRetries).toEqual([]);
    expect(h.restarts).toEqual([]);
    expect(h.stopped).toEqual([]);
    expect(h.sink.commits).toEqual([]);
    h.engine.stop();
  });

  it('at-least-once: drain() leaves a retry of what was handed over running (it is delivered, not dropped)', async () => {
    const h = new EngineHarness({ guarantee: 'at-least-once', sink: new FakeSink().scriptSends(kafkaDown()), retry: { initialDelayMs: 20, maxDelayMs: 20 } });
    h.transaction('t', 1);
    h.engine.drain();
    await h.idle();
    expect(h.sink.written).toEqual(['t.0']);
    expect(h.acknowledged).toBe(1);
    h.engine.stop();
  });
});
