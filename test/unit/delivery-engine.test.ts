import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sleep } from '../../src/retry.js';
import { RelayError } from '../../src/errors.js';
import { formatLsn } from '../../src/lsn.js';
import { collateralFailure } from '../../src/sink/kafka-errors.js';
import type { SourceTransaction } from '../../src/checkpoint/ack-tracker.js';
import type { OutboxEvent } from '../../src/route/event.js';
import { EngineHarness, settle } from '../support/fakes/engine-harness.js';
import { FakeSink, deferred, fenced, kafkaDown } from '../support/fakes/fake-sink.js';

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** Fake timers, and every backoff at its ceiling, retry.initialDelay × 2^(n − 1): a test steps to just before and to each. */
function backoffsAtCeiling(): void {
  vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'] });
  vi.spyOn(Math, 'random').mockReturnValue(1);
}

/** Its fix is the code's default one (errors.ts), as from classifyKafkaError. */
function missingTopic(topic: string): RelayError {
  return new RelayError('TOPIC_NOT_FOUND', `topic "${topic}" does not exist (fake)`, { details: { topic } });
}

function recordTooLarge(): RelayError {
  return new RelayError('RECORD_TOO_LARGE', 'MESSAGE_TOO_LARGE (fake)');
}

/**
 * exactly-once: transactions t1 and t2 (one event each) go in one request, which Kafka refuses for t2.0 once the
 * session ended (its PostgreSQL connection lost while the request was in flight); returns once delivery is idle.
 */
async function refusedAsSessionEnds(recordMaxAttempts: number) {
  const h = new EngineHarness({ guarantee: 'exactly-once', retry: { recordMaxAttempts }, limits: { batchMaxEvents: 10 }, sink: new FakeSink().scriptSends('hang') });
  const t1 = h.begin('t1', 1).txn;
  h.commit(t1);
  const t2 = h.begin('t2', 1).txn;
  h.commit(t2);
  await vi.waitFor(() => expect(h.sink.calls).toHaveLength(1));
  h.engine.endSession(h.tracker);
  h.sink.calls[0]!.answer.reject(recordTooLarge());
  await h.idle();
  return { h, t1, t2 };
}

/** The relay's next session streams t1 and t2 again from the checkpoint; Kafka refuses t2.0 again, alone too. */
async function streamedAgain(h: EngineHarness, t1: SourceTransaction, t2: SourceTransaction): Promise<void> {
  h.sink.scriptSends(recordTooLarge(), 'ok', recordTooLarge());
  h.newSession();
  h.commit(h.begin('t1', 1, t1.commitLsn).txn);
  h.commit(h.begin('t2', 1, t2.commitLsn).txn);
  await h.idle();
}

/** As RdKafkaSink reports brokers without the idempotent producer: no retry gets past it, no record is at fault. */
function noIdempotentProducer(): RelayError {
  return new RelayError('CONFIG_INVALID', 'the brokers do not support the idempotent producer the relay needs (fake)');
}

describe('DeliveryEngine, at-least-once', () => {
  it('confirms a transaction only once every event of it and of earlier ones was acknowledged', async () => {
    // One event per request, three in flight: t1's first event and all of t2 are acknowledged while t1's second hangs.
    const h = new EngineHarness({ guarantee: 'at-least-once', limits: { batchMaxEvents: 1 }, sink: new FakeSink(3).scriptSends('ok', 'hang', 'ok') });
    const end1 = h.transaction('t1', 2);
    const end2 = h.transaction('t2', 1);
    await settle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['t1.0'], ['t1.1'], ['t2.0']]);
    expect(h.sink.written).toEqual(['t1.0', 't2.0']);
    expect(h.confirmed).toEqual([]);
    h.sink.calls[1]!.answer.resolve();
    await h.idle();
    expect(h.confirmed).toEqual([end1, end2]);
  });

  it('re-sends a failed batch and every batch behind it in commit order, and acknowledges each event once', async () => {
    // Three requests in flight; the first fails after the two behind it were written (at Kafka: records of other
    // partitions, or a failure the sink learns only from the delivery reports).
    const h = new EngineHarness({ guarantee: 'at-least-once', sink: new FakeSink(3).scriptSends(kafkaDown(), 'ok', 'ok') });
    h.transaction('a', 2);
    h.transaction('b', 2);
    const end = h.transaction('c', 2);
    await h.idle();
    expect(h.sink.calls.slice(0, 3).map((c) => c.ids)).toEqual([['a.0', 'a.1'], ['b.0', 'b.1'], ['c.0', 'c.1']]);
    // After the failure: a, then b and c again, in order.
    expect(h.sink.written.slice(4)).toEqual(['a.0', 'a.1', 'b.0', 'b.1', 'c.0', 'c.1']);
    expect(h.lastConfirmed).toBe(end);
    // b and c were written twice; their events are acknowledged once.
    expect(h.acknowledged).toBe(6);
    expect(h.engine.inFlightEvents).toBe(0);
    expect(h.retrying).toHaveLength(1);
    expect(h.recovered).toBe(1);
  });

  it('sends nothing new behind a failed request while one before it is still in flight, so each event first reaches Kafka in commit order', async () => {
    // One event per request, up to three in flight: a hangs, b fails; c arrives after b's failure.
    const h = new EngineHarness({ guarantee: 'at-least-once', limits: { batchMaxEvents: 1 }, sink: new FakeSink(3).scriptSends('hang', kafkaDown()) });
    h.transaction('a', 1);
    h.transaction('b', 1);
    await settle();
    const end = h.transaction('c', 1);
    await settle();
    // Before, c went out here and reached Kafka ahead of a (still unanswered) and of b's re-send.
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['a.0'], ['b.0']]);
    h.sink.calls[0]!.answer.resolve();
    await h.idle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['a.0'], ['b.0'], ['b.0'], ['c.0']]);
    expect(h.sink.written).toEqual(['a.0', 'b.0', 'c.0']);
    expect(h.lastConfirmed).toBe(end);
  });

  it('a request cut off by a record refused behind it (the sink replaced the producer) is re-sent at once, no outage, and the refused one is isolated in its turn, not re-sent whole first', async () => {
    const poisoned: string[] = [];
    // a's first call hangs (it is cut off below); Kafka refuses b.1 whenever it is sent, alone or not.
    const sink = new FakeSink(2).scriptSends('hang');
    const send = sink.send.bind(sink);
    sink.send = (records) => {
      if (records.some((r) => r.key!.toString() === 'b.1')) sink.scriptSends(recordTooLarge());
      return send(records);
    };
    const h = new EngineHarness({
      guarantee: 'at-least-once',
      sink,
      poison: async (event) => {
        poisoned.push(event.eventId);
        return 'skip';
      },
    });
    h.transaction('a', 2);
    const end = h.transaction('b', 2);
    await settle();
    // The sink replaced the producer over b.1's refusal: a's call, still waiting for its reports, fails with it.
    h.sink.calls[0]!.answer.reject(collateralFailure('the producer was closed before every record of the batch had its delivery report (fake)'));
    await h.idle();
    // Before: [b.0, b.1] went out whole again after a's re-send, refused a second time (with librdkafka a second
    // producer replaced), and only then was isolated.
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['a.0', 'a.1'], ['b.0', 'b.1'], ['a.0', 'a.1'], ['b.0'], ['b.1']]);
    // retry.recordMaxAttempts (2): the refused request, then b.1 alone. 4 before the re-send fix, then 3 until
    // the refused request counted as b.1's first attempt.
    expect(h.sink.calls.filter((c) => c.ids.includes('b.1'))).toHaveLength(2);
    // Earlier: a retried as a Kafka outage (a warn line, not ready, then 'available again').
    expect(h.retrying).toEqual([]);
    expect(h.recovered).toBe(0);
    expect(poisoned).toEqual(['b.1']);
    expect(h.sink.written).toEqual(['a.0', 'a.1', 'b.0']);
    expect(h.lastConfirmed).toBe(end);
  });

  it('a cut-off request whose re-send fails again backs off as in an outage: one free re-send, no loop without backoff', async () => {
    const cutOff = () => collateralFailure('the producer was closed before every record of the batch had its delivery report (fake)');
    const h = new EngineHarness({ guarantee: 'at-least-once', limits: { batchMaxEvents: 1 }, sink: new FakeSink(2).scriptSends('hang', 'ok', cutOff()) });
    h.transaction('a', 1);
    const end = h.transaction('b', 1);
    await settle();
    h.sink.calls[0]!.answer.reject(cutOff());
    await h.idle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['a.0'], ['b.0'], ['a.0'], ['a.0'], ['b.0']]);
    // One backoff: before the free re-send there were two (the first for the cut-off itself).
    expect(h.retrying.map((e) => e.code)).toEqual(['KAFKA_UNAVAILABLE']);
    expect(h.recovered).toBe(1);
    expect(h.lastConfirmed).toBe(end);
  });

  it('isolates a record Kafka rejects, dead-letters only it after retry.recordMaxAttempts refusals (the whole batch\'s the first), and keeps the rest in order', async () => {
    const poisoned: [string, unknown][] = [];
    const h = new EngineHarness({
      guarantee: 'at-least-once',
      limits: { batchMaxEvents: 10 },
      // The batch fails; alone, x.1 fails again (FAST_RETRY: 2 attempts), the others pass. Before, the batch's
      // refusal did not count: x.1 was produced once more and its dead letter said 2 attempts after 3.
      sink: new FakeSink().scriptSends(recordTooLarge(), 'ok', recordTooLarge(), 'ok'),
      poison: async (event, error) => {
        poisoned.push([event.eventId, error.details.attempts]);
        return 'skip';
      },
    });
    const end = h.transaction('x', 3);
    await h.idle();
    expect(poisoned).toEqual([['x.1', 2]]);
    expect(h.sink.written).toEqual(['x.0', 'x.2']);
    expect(h.lastConfirmed).toBe(end);
    // x.0 and x.2 were produced and timed; the skipped x.1 had no round trip of its own.
    expect(h.latencies.map((ms) => (ms === undefined ? 'none' : 'timed'))).toEqual(['timed', 'none', 'timed']);
  });

  it('retry.recordMaxAttempts 1: a record refused beside others is produced alone once, to tell it from them, without a wait, and meets the policy with 2 attempts, as produced', async () => {
    const poisoned: [string, unknown][] = [];
    const h = new EngineHarness({
      guarantee: 'at-least-once',
      retry: { recordMaxAttempts: 1 },
      limits: { batchMaxEvents: 10 },
      sink: new FakeSink().scriptSends(recordTooLarge(), 'ok', recordTooLarge()),
      poison: async (event, error) => {
        poisoned.push([event.eventId, error.details.attempts]);
        return 'skip';
      },
    });
    const end = h.transaction('x', 2);
    await h.idle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['x.0', 'x.1'], ['x.0'], ['x.1']]);
    expect(h.recordRetries).toEqual([]);
    expect(poisoned).toEqual([['x.1', 2]]);
    expect(h.lastConfirmed).toBe(end);
  });

  it('a record Kafka refuses is produced again only once its backoff ran out, a longer one each time, then goes to the poison policy', async () => {
    backoffsAtCeiling();
    const poisoned: string[] = [];
    const h = new EngineHarness({
      guarantee: 'at-least-once',
      retry: { initialDelayMs: 1000, maxDelayMs: 8000, recordMaxAttempts: 3 },
      sink: new FakeSink().scriptSends(recordTooLarge(), recordTooLarge(), recordTooLarge()),
      poison: async (event) => {
        poisoned.push(event.eventId);
        return 'skip';
      },
    });
    const end = h.transaction('x', 1);
    for (const [i, backoffMs] of [1000, 2000].entries()) {
      await vi.advanceTimersByTimeAsync(backoffMs - 1);
      expect(h.sink.calls, `refusal ${i + 1}: not produced again before ${backoffMs} ms`).toHaveLength(i + 1);
      await vi.advanceTimersByTimeAsync(1);
      expect(h.sink.calls, `refusal ${i + 1}: produced again at ${backoffMs} ms`).toHaveLength(i + 2);
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(poisoned).toEqual(['x.0']);
    expect(h.recordRetries).toEqual(['x.0 then poison policy', 'x.0 then poison policy']);
    expect(h.lastConfirmed).toBe(end);
  });

  // Found by a review: the session ended inside the record's transaction during its retries, and its dead letter was
  // written though the next session streams the transaction again; the topic created meanwhile, the event reached it too.
  it('a record Kafka refuses whose session ended inside its transaction during its retries: dropped unconfirmed with the rest of it, no dead letter; streamed again, it reaches its topic once', async () => {
    const poisoned: string[] = [];
    const h = new EngineHarness({
      guarantee: 'at-least-once',
      limits: { batchMaxEvents: 1 },
      sink: new FakeSink(2).scriptSends('ok', 'hang', 'hang', recordTooLarge()),
      poison: async (event) => {
        poisoned.push(event.eventId);
        return 'skip';
      },
    });
    const end1 = h.transaction('ok', 1);
    const { txn } = h.begin('x', 2);
    await vi.waitFor(() => expect(h.sink.calls).toHaveLength(3));
    // x.1 went out behind x.0 (two requests in flight); it fails too, and would be re-sent after x.0.
    h.sink.calls[2]!.answer.reject(kafkaDown());
    // The session ends inside x: its Commit never comes.
    h.engine.endSession(h.tracker);
    // Refused (the first attempt), and again alone (the second, FAST_RETRY's last): the poison policy's turn.
    h.sink.calls[1]!.answer.reject(recordTooLarge());
    await h.idle();
    // Before: a dead letter for x.0, then x.1 re-sent. Sent, x.1 reached its partition ahead of x.0 streamed again.
    expect(poisoned).toEqual([]);
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['ok.0'], ['x.0'], ['x.1'], ['x.0']]);
    expect(h.stopped).toEqual([]);
    expect(h.lastConfirmed).toBe(end1);
    expect(h.engine.inFlightEvents).toBe(0);
    // The next session streams x again from the confirmed position; its topic exists by now.
    h.newSession();
    const end2 = h.commit(h.begin('x', 2, txn.commitLsn).txn);
    await h.idle();
    expect(poisoned).toEqual([]);
    expect(h.sink.written).toEqual(['ok.0', 'x.0', 'x.1']);
    expect(h.lastConfirmed).toBe(end2);
  });

  it('halts on a record the poison policy will not skip, confirming nothing from its transaction on', async () => {
    const h = new EngineHarness({ guarantee: 'at-least-once', limits: { batchMaxEvents: 1 }, sink: new FakeSink().scriptSends('ok', recordTooLarge(), recordTooLarge()) });
    const end1 = h.transaction('ok', 1);
    h.transaction('bad', 1);
    await h.idle();
    expect(h.stopped.map((e) => e.code)).toEqual(['RECORD_TOO_LARGE']);
    expect(h.stopped[0]!.message).toContain('bad.0');
    expect(h.lastConfirmed).toBe(end1);
  });

  it('the halt quotes an id of 100,000 characters by its first 300 and its length; the details keep it whole', async () => {
    const h = new EngineHarness({ guarantee: 'at-least-once', limits: { batchMaxEvents: 1 }, sink: new FakeSink().scriptSends(recordTooLarge(), recordTooLarge(), recordTooLarge()) });
    const id = 'x'.repeat(100_000);
    const { txn } = h.begin('long', 0);
    h.push(txn, id);
    h.commit(txn);
    await h.idle();
    expect(h.stopped[0]!.message).toBe(`cannot produce event "${'x'.repeat(300)}…" (100000 characters) (commit LSN ${formatLsn(txn.commitLsn)}) to topic "t": MESSAGE_TOO_LARGE (fake)`);
    expect(h.stopped[0]!.details.eventId).toBe(id);
  });

  it('a halt of an event whose row had no id (its eventId is "") names it "event without id"', async () => {
    const h = new EngineHarness({ guarantee: 'at-least-once', limits: { batchMaxEvents: 1 }, sink: new FakeSink().scriptSends(recordTooLarge(), recordTooLarge(), recordTooLarge()) });
    const { txn } = h.begin('noid', 0);
    h.push(txn, '');
    h.commit(txn);
    await h.idle();
    expect(h.stopped[0]!.message).toBe(`cannot produce event without id (commit LSN ${formatLsn(txn.commitLsn)}) to topic "t": MESSAGE_TOO_LARGE (fake)`);
  });

  it('sends an unmappable row to the poison policy in its place in the stream', async () => {
    const seen: string[] = [];
    const h = new EngineHarness({
      guarantee: 'at-least-once',
      poison: async (event, error) => {
        seen.push(`${event.eventId}:${error.code}`);
        return 'skip';
      },
    });
    const { txn } = h.begin('m', 1);
    h.push(txn, 'null-payload', new RelayError('RECORD_REQUIRED_NULL', 'payload is NULL'));
    h.push(txn, 'm.after');
    const end = h.commit(txn);
    await h.idle();
    expect(seen).toEqual(['null-payload:RECORD_REQUIRED_NULL']);
    expect(h.sink.written).toEqual(['m.0', 'm.after']);
    expect(h.lastConfirmed).toBe(end);
  });

  it('a dead letter Kafka takes only after the stall timeout ends the outage that wait started (before, it stayed open until the next batch)', async () => {
    const h = new EngineHarness({
      guarantee: 'at-least-once',
      stallTimeoutMs: 20,
      // The dead letter's one request, answered after 1.5 s.
      poison: async (_event, _error, _stop, kafka) => {
        await kafka.send(sleep(1500));
        return 'skip';
      },
    });
    const { txn } = h.begin('m', 0);
    h.push(txn, 'bad', new RelayError('RECORD_REQUIRED_NULL', 'payload is NULL'));
    const end = h.commit(txn);
    await h.idle();
    expect(h.retrying.map((e) => e.code)).toEqual(['KAFKA_UNAVAILABLE']);
    expect(h.recovered).toBe(1);
    expect(h.lastConfirmed).toBe(end);
  });

  it('holds no event Kafka acknowledged: a sent batch is released at once, not at the queue\'s next compaction', async () => {
    // V8's collector, reachable from a test: the flag takes effect for contexts created after it is set.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const h = new EngineHarness({ guarantee: 'at-least-once', limits: { batchMaxEvents: 10 } });
    const { txn } = h.begin('big', 0);
    // In a function of its own: the suspended test function would otherwise keep its last event alive.
    const pushEvents = (count: number): WeakRef<OutboxEvent>[] =>
      Array.from({ length: count }, (_, i) => {
        txn.tracker.add(txn);
        // 8 KiB payloads: what a queue holding acknowledged events would keep alive, 4,096 of them before.
        const event: OutboxEvent = { topic: 't', key: Buffer.from(`big.${i}`), value: Buffer.alloc(8192), headers: {}, eventId: `big.${i}`, size: 8200, txn };
        h.engine.push(event);
        return new WeakRef(event);
      });
    const sent = pushEvents(100);
    const end = h.commit(txn);
    await h.idle();
    expect(h.lastConfirmed).toBe(end);
    // WeakRef targets stay alive until the turn that created them ends.
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
    expect(sent.flatMap((ref) => ref.deref()?.eventId ?? [])).toEqual([]);
  });

  it('pauses the source when the window is full and never reopens it for a session that ended (SIGTERM while paused)', async () => {
    const h = new EngineHarness({ guarantee: 'at-least-once', limits: { maxInFlightEvents: 4 }, sink: new FakeSink().scriptSends('hang', 'hang') });
    const { txn, room } = h.begin('big', 4);
    expect(room).toBe(false);
    const end = h.commit(txn);
    // The stop ends the session while the window is full: what was handed over is still delivered (the drain).
    h.engine.endSession(h.tracker);
    expect(h.begin('late', 1).room).toBe(false);
    await settle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['big.0', 'big.1']]);
    h.sink.calls[0]!.answer.resolve();
    await settle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['big.0', 'big.1'], ['big.2', 'big.3']]);
    h.sink.calls[1]!.answer.resolve();
    await h.idle();
    // Acknowledgements freed the window twice over, and it stayed closed to the ended session.
    expect(h.windowOpens).toBe(0);
    expect(h.sink.written).toEqual(['big.0', 'big.1', 'big.2', 'big.3']);
    expect(h.lastConfirmed).toBe(end);
  });

  it('tells how long the window has been full while Kafka does not answer, and stops counting when it reopens', async () => {
    // Only the clock is fake: the window reads Date.now().
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_000_000);
    const h = new EngineHarness({ guarantee: 'at-least-once', limits: { maxInFlightEvents: 4 }, sink: new FakeSink().scriptSends('hang') });
    expect(h.engine.windowFullSinceMs).toBeUndefined();
    const end = h.transaction('big', 4);
    expect(h.engine.windowFullSinceMs).toBe(1_000_000);
    await settle();
    vi.setSystemTime(1_000_030);
    expect(h.engine.windowFullMs).toBe(30);
    h.sink.calls[0]!.answer.resolve();
    await h.idle();
    expect(h.windowOpens).toBe(1);
    expect(h.lastConfirmed).toBe(end);
    expect(h.engine.windowFullSinceMs).toBeUndefined();
    const total = h.engine.windowFullMs;
    expect(total).toBe(30);
    vi.setSystemTime(1_000_050);
    expect(h.engine.windowFullMs).toBe(total);
  });

  it('keeps batches to a share of the window, so that a full window reopens with batches still in flight', async () => {
    // Four requests in flight, a window of 16 events and batch limits far above it: batches of 16 / (2 × 4) = 2.
    const h = new EngineHarness({ guarantee: 'at-least-once', limits: { maxInFlightEvents: 16, batchMaxEvents: 100 }, sink: new FakeSink(4).scriptSends(...Array<'hang'>(8).fill('hang')) });
    const end = h.transaction('big', 16);
    await settle();
    expect(h.sink.calls.map((c) => c.ids.length)).toEqual([2, 2, 2, 2]);
    for (const call of h.sink.calls.slice(0, 3)) call.answer.resolve();
    await settle();
    expect(h.windowOpens).toBe(0); // 10 of 16 still in the window
    h.sink.calls[3]!.answer.resolve();
    await settle();
    // Half the window left: it reopens while Kafka holds four more batches, launched as the first ones returned.
    expect(h.windowOpens).toBe(1);
    expect(h.sink.calls).toHaveLength(8);
    expect(h.engine.inFlightEvents).toBe(8);
    for (const call of h.sink.calls.slice(4)) call.answer.resolve();
    await h.idle();
    expect(h.sink.written).toEqual(Array.from({ length: 16 }, (_, i) => `big.${i}`));
    expect(h.lastConfirmed).toBe(end);
  });

  it('drops the unfinished tail of a session that ended mid-transaction and becomes idle', async () => {
    const h = new EngineHarness({ guarantee: 'at-least-once', sink: new FakeSink().scriptSends('hang') });
    const end = h.transaction('done', 2);
    h.begin('open', 3);
    h.engine.endSession(h.tracker);
    await settle();
    h.sink.calls[0]!.answer.resolve();
    await h.idle();
    expect(h.sink.written).toEqual(['done.0', 'done.1']);
    expect(h.lastConfirmed).toBe(end);
    expect(h.engine.inFlightEvents).toBe(0);
  });

  it('a session that ends inside a transaction already partly in Kafka confirms only the transactions before it', async () => {
    const h = new EngineHarness({ guarantee: 'at-least-once' });
    const end = h.transaction('done', 2);
    h.begin('open', 3);
    await settle();
    // The open transaction's events are in Kafka and acknowledged; its commit never comes.
    expect(h.sink.written).toEqual(['done.0', 'done.1', 'open.0', 'open.1', 'open.2']);
    h.engine.endSession(h.tracker);
    await h.idle();
    expect(h.confirmed).toEqual([end]);
    expect(h.engine.inFlightEvents).toBe(0);
  });

  it('coalesces: transactions that arrive within delivery.coalesce share one request, a full batch leaves at once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const h = new EngineHarness({ guarantee: 'at-least-once', limits: { coalesceMs: 5, batchMaxEvents: 4 } });
    h.transaction('a', 1);
    await settle();
    await vi.advanceTimersByTimeAsync(2);
    h.transaction('b', 1);
    await settle();
    // Nothing leaves before the oldest event waited the window...
    expect(h.sink.calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(3);
    await settle();
    // ...then both transactions go in one request.
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['a.0', 'b.0']]);
    // Four events fill a batch: it does not wait.
    const end = h.transaction('c', 4);
    await settle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['a.0', 'b.0'], ['c.0', 'c.1', 'c.2', 'c.3']]);
    await h.idle();
    expect(h.lastConfirmed).toBe(end);
  });

  it('does not hold events back once the session ended (nothing more can join them)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const h = new EngineHarness({ guarantee: 'at-least-once', limits: { coalesceMs: 1000, batchMaxEvents: 4 } });
    const end = h.transaction('a', 1);
    await settle();
    expect(h.sink.calls).toEqual([]);
    h.engine.endSession(h.tracker);
    await h.idle();
    expect(h.sink.written).toEqual(['a.0']);
    expect(h.lastConfirmed).toBe(end);
  });

  it('reports a broker that stops answering as an outage within the delivery timeout, and its recovery', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const h = new EngineHarness({ guarantee: 'at-least-once', stallTimeoutMs: 5000, sink: new FakeSink().scriptSends('hang') });
    const end = h.transaction('s', 1);
    await settle();
    await vi.advanceTimersByTimeAsync(4000);
    expect(h.retrying).toEqual([]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(h.retrying.map((e) => e.code)).toEqual(['KAFKA_UNAVAILABLE']);
    h.sink.calls[0]!.answer.resolve();
    await settle();
    expect(h.recovered).toBe(1);
    expect(h.lastConfirmed).toBe(end);
  });

  it('gives up with RETRIES_EXHAUSTED once a silent broker outlasts retry.maxDuration', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const h = new EngineHarness({ guarantee: 'at-least-once', stallTimeoutMs: 1000, retry: { maxDurationMs: 10_000 }, sink: new FakeSink().scriptSends('hang') });
    h.transaction('s', 1);
    await settle();
    await vi.advanceTimersByTimeAsync(15_000);
    expect(h.stopped.map((e) => e.code)).toEqual(['RETRIES_EXHAUSTED']);
    // No failed attempt was counted (the request was never answered): the line does not say "(0 attempts)".
    expect(h.stopped[0]!.message).toMatch(/^Kafka unavailable for 1\d s: Kafka has not answered a produce request for 1\d s$/);
    expect(h.confirmed).toEqual([]);
  });

  it('gives up with RETRIES_EXHAUSTED carrying the fix of the failure it retried (a missing grant), not only "check the brokers"', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const refused = () => new RelayError('KAFKA_AUTH', 'the brokers refused the idempotent producer an id (fake)', { retriable: true, hint: 'grant IdempotentWrite on the cluster (fake)' });
    const sink = new FakeSink();
    sink.send = () => Promise.reject(refused());
    const h = new EngineHarness({ guarantee: 'at-least-once', retry: { maxDurationMs: 10_000 }, sink });
    h.transaction('s', 1);
    await settle();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(h.stopped.map((e) => e.code)).toEqual(['RETRIES_EXHAUSTED']);
    expect(h.stopped[0]!.hint).toBe('grant IdempotentWrite on the cluster (fake); the relay exits so that it is restarted, and resumes from the last confirmed position');
    expect(h.confirmed).toEqual([]);
  });

  it('a failure no retry mends and no record is at fault for (brokers without the idempotent producer): halts with it at once, no retry, nothing confirmed; before, it was an outage until retry.maxDuration', async () => {
    const h = new EngineHarness({ guarantee: 'at-least-once', sink: new FakeSink().scriptSends(noIdempotentProducer()) });
    h.transaction('t', 2);
    for (let i = 0; i < 5; i++) await settle();
    expect(h.stopped.map((e) => e.code)).toEqual(['CONFIG_INVALID']);
    expect(h.sink.calls).toHaveLength(1);
    expect(h.retrying).toEqual([]);
    expect(h.confirmed).toEqual([]);
  });

  it('bounds a re-send that Kafka never answers like a first send: an outage, then RETRIES_EXHAUSTED', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    // The first attempt fails (a metadata timeout, a replaced producer); the broker then goes silent (librdkafka has no message timeout).
    const h = new EngineHarness({ guarantee: 'at-least-once', stallTimeoutMs: 1000, retry: { maxDurationMs: 10_000 }, sink: new FakeSink().scriptSends(kafkaDown(), 'hang') });
    h.transaction('s', 1);
    await settle();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(h.sink.calls).toHaveLength(2);
    expect(h.retrying.map((e) => e.code)).toEqual(['KAFKA_UNAVAILABLE']);
    expect(h.stopped.map((e) => e.code)).toEqual(['RETRIES_EXHAUSTED']);
    expect(h.confirmed).toEqual([]);
  });

  it('a stop while the poison policy runs aborts it: no halt, nothing confirmed from that event on', async () => {
    let stop: AbortSignal | undefined;
    const h = new EngineHarness({
      guarantee: 'at-least-once',
      limits: { batchMaxEvents: 1 },
      poison: (_event, _error, signal) => {
        stop = signal;
        return new Promise((resolve) => signal.addEventListener('abort', () => resolve('stopped')));
      },
    });
    const end1 = h.transaction('ok', 1);
    const { txn } = h.begin('m', 0);
    h.push(txn, 'bad', new RelayError('RECORD_REQUIRED_NULL', 'payload is NULL (fake)'));
    h.commit(txn);
    await vi.waitFor(() => expect(stop).toBeDefined());
    expect(stop!.aborted).toBe(false);
    h.engine.stop();
    expect(stop!.aborted).toBe(true);
    await settle();
    expect(h.stopped).toEqual([]);
    expect(h.lastConfirmed).toBe(end1);
  });

  // Found by a review with the fake sink: the loops that re-send a failed request's records one by one did not
  // look whether delivery had stopped between two sends.
  it('stopped while a refused batch is produced record by record: the records after the one under way are not produced', async () => {
    const sink = new FakeSink().scriptSends(recordTooLarge(), 'hang');
    const h = new EngineHarness({ guarantee: 'at-least-once', sink });
    const { txn } = h.begin('m', 0);
    h.push(txn, 'm.0');
    h.push(txn, 'm.1');
    h.commit(txn);
    await settle();
    expect(sink.calls.map((c) => c.ids)).toEqual([['m.0', 'm.1'], ['m.0']]);
    h.engine.stop();
    sink.calls[1]!.answer.resolve();
    await settle();
    expect(sink.calls.map((c) => c.ids)).toEqual([['m.0', 'm.1'], ['m.0']]);
    expect(h.confirmed).toEqual([]);
  });

  it('stopped while the first of several failed requests is re-sent: the request behind it, whose record Kafka refused, is not produced again nor decided by the poison policy', async () => {
    const sink = new FakeSink(2).scriptSends(kafkaDown(), recordTooLarge(), 'hang');
    let decisions = 0;
    const h = new EngineHarness({ guarantee: 'at-least-once', sink, limits: { batchMaxEvents: 1 }, poison: async () => (decisions++, 'halt') });
    h.transaction('a', 1);
    h.transaction('b', 1);
    await vi.waitFor(() => expect(sink.calls.map((c) => c.ids)).toEqual([['a.0'], ['b.0'], ['a.0']]));
    h.engine.stop();
    sink.calls[2]!.answer.resolve();
    await settle();
    expect(sink.calls).toHaveLength(3);
    expect([decisions, h.recordRetries.length]).toEqual([0, 0]);
  });

  it('bounds a dead letter that Kafka never answers: an outage, then RETRIES_EXHAUSTED, nothing confirmed past it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    // The dead-letter write never settles (the plain producer over librdkafka has no message timeout).
    const h = new EngineHarness({ guarantee: 'at-least-once', stallTimeoutMs: 1000, retry: { maxDurationMs: 10_000 }, poison: (_event, _error, _stop, kafka) => kafka.send(new Promise(() => {})) });
    const { txn } = h.begin('m', 0);
    h.push(txn, 'bad', new RelayError('RECORD_REQUIRED_NULL', 'payload is NULL (fake)'));
    h.commit(txn);
    await settle();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(h.retrying.map((e) => e.code)).toEqual(['KAFKA_UNAVAILABLE']);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.stopped.map((e) => e.code)).toEqual(['RETRIES_EXHAUSTED']);
    expect(h.confirmed).toEqual([]);
  });
});

describe('DeliveryEngine, exactly-once', () => {
  it('commits whole source transactions with a checkpoint at the newest end LSN, then confirms', async () => {
    // t1 spans two requests (two events per batch): no commit may fall between them.
    const h = new EngineHarness({ guarantee: 'exactly-once', sink: new FakeSink().scriptCommits('hang') });
    const end1 = h.transaction('t1', 3);
    const end = h.transaction('t2', 1);
    await settle();
    // Produced, not committed: nothing is visible to read_committed consumers, nothing confirmed.
    expect(h.sink.calls.flatMap((c) => c.ids)).toEqual(['t1.0', 't1.1', 't1.2', 't2.0']);
    expect(h.sink.visible).toEqual([]);
    expect(h.confirmed).toEqual([]);
    h.sink.pendingCommit!.resolve();
    await h.idle();
    expect(h.sink.visible).toEqual(['t1.0', 't1.1', 't1.2', 't2.0']);
    // Every commit at a source transaction's end, each checkpoint at the newest end it covers.
    expect(h.sink.visibleAtCommits).toEqual(h.sink.commits.map((c) => (c.lsn === end1 ? 3 : 4)));
    expect(h.sink.commits.map((c) => c.lsn).filter((lsn) => lsn !== end1 && lsn !== end)).toEqual([]);
    expect(h.sink.commits.at(-1)!.lsn).toBe(end);
    expect(h.lastConfirmed).toBe(end);
  });

  it('after a failed produce, refuses the rest of that session and commits nothing: T1 is never skipped, T2 never overtakes it', async () => {
    const h = new EngineHarness({ guarantee: 'exactly-once', sink: new FakeSink().scriptSends(kafkaDown()).scriptAborts('hang') });
    h.transaction('t1', 1);
    await settle();
    // While the abort is still pending, the same session delivers T2.
    const t2 = h.begin('t2', 1);
    expect(t2.room).toBe(false);
    h.commit(t2.txn);
    await settle();
    h.sink.pendingAbort!.resolve();
    await h.idle();
    expect(h.sink.commits).toEqual([]);
    expect(h.sink.visible).toEqual([]);
    expect(h.sink.calls.flatMap((c) => c.ids)).toEqual(['t1.0']);
    expect(h.confirmed).toEqual([]);
    expect(h.restarts.map((e) => e.code)).toEqual(['KAFKA_UNAVAILABLE']);
    // The restarted session streams both again, in order.
    h.newSession();
    h.transaction('t1', 1);
    const end = h.transaction('t2', 1);
    await h.idle();
    expect(h.sink.visible).toEqual(['t1.0', 't2.0']);
    expect(h.sink.commits.map((c) => c.lsn)).toEqual([end]);
  });

  it('a produce Kafka never answers: an outage within the delivery timeout, nothing committed or confirmed meanwhile', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const h = new EngineHarness({ guarantee: 'exactly-once', stallTimeoutMs: 5000, sink: new FakeSink().scriptSends('hang') });
    h.transaction('t', 2);
    await settle();
    await vi.advanceTimersByTimeAsync(6000);
    expect(h.retrying.map((e) => e.code)).toEqual(['KAFKA_UNAVAILABLE']);
    expect(h.sink.commits).toEqual([]);
    expect(h.sink.visible).toEqual([]);
    expect(h.confirmed).toEqual([]);
  });

  it('aborts and becomes idle when the session ends inside a source transaction (PostgreSQL dropped)', async () => {
    const h = new EngineHarness({ guarantee: 'exactly-once' });
    h.begin('open', 5);
    await settle();
    expect(h.sink.calls.length).toBeGreaterThan(0);
    h.engine.endSession(h.tracker);
    await h.idle();
    expect(h.sink.aborts).toBe(1);
    expect(h.sink.commits).toEqual([]);
    expect(h.sink.visible).toEqual([]);
    expect(h.confirmed).toEqual([]);
  });

  // Let go, the next claim registers the id under the slot's lock; replaced (registered again) after the session
  // ended, the id fenced the instance that may hold the slot by then.
  it.each([
    ['the session ended inside a source transaction', () => new FakeSink(), (h: EngineHarness) => h.engine.endSession(h.tracker)],
    ['a produce Kafka failed', () => new FakeSink().scriptSends(kafkaDown()), () => undefined],
  ])('%s: the abort after everything uncommitted was dropped tells the sink that only a claim follows', async (_case, sink, then) => {
    const h = new EngineHarness({ guarantee: 'exactly-once', sink: sink() });
    h.begin('open', 1);
    await settle();
    then(h);
    await vi.waitFor(() => expect(h.sink.aborts).toBe(1));
    expect(h.sink.abortsThen).toEqual(['claim']);
    h.engine.stop();
  });

  it('commits what was complete when a stop ends the session between transactions', async () => {
    const h = new EngineHarness({ guarantee: 'exactly-once' });
    const end = h.transaction('done', 2);
    h.begin('open', 1);
    h.engine.endSession(h.tracker);
    await h.idle();
    expect(h.sink.visible).toEqual(['done.0', 'done.1']);
    expect(h.lastConfirmed).toBe(end);
  });

  it('never confirms after an ambiguous commit: it aborts and asks for a restart from the checkpoint', async () => {
    const h = new EngineHarness({ guarantee: 'exactly-once', sink: new FakeSink().scriptCommits('ambiguous') });
    const end = h.transaction('t', 2);
    await h.idle();
    // The broker committed; the relay did not hear it: nothing is confirmed, the source restarts (and reads the checkpoint).
    expect(h.sink.commits.map((c) => c.lsn)).toEqual([end]);
    expect(h.confirmed).toEqual([]);
    expect(h.sink.aborts).toBe(1);
    expect(h.restarts).toHaveLength(1);
  });

  it('retries a commit inside the transaction when the client says it may, without restarting the source', async () => {
    const retriable = new RelayError('KAFKA_UNAVAILABLE', 'commit timed out (fake)', { retriable: true, details: { txnRetriable: true } });
    const h = new EngineHarness({ guarantee: 'exactly-once', sink: new FakeSink().scriptCommits(retriable, 'ok') });
    const end = h.transaction('t', 1);
    await h.idle();
    expect(h.restarts).toEqual([]);
    expect(h.lastConfirmed).toBe(end);
    // The commit was tried again and went through: one produce, nothing aborted.
    expect(h.sink.commits.map((c) => c.lsn)).toEqual([end]);
    expect(h.sink.visible).toEqual(['t.0']);
    expect(h.sink.aborts).toBe(0);
    expect(h.sink.calls).toHaveLength(1);
  });

  it('restarts the source once when the broker timed the transaction out, and halts naming the setting when it happens again', async () => {
    const timeout = () => new RelayError('KAFKA_TXN_TIMEOUT', 'transaction timed out (fake)', { retriable: true });
    const h = new EngineHarness({ guarantee: 'exactly-once', sink: new FakeSink().scriptSends(timeout(), timeout()) });
    const { txn } = h.begin('long', 1);
    h.commit(txn);
    await h.idle();
    expect(h.restarts.map((e) => e.code)).toEqual(['KAFKA_TXN_TIMEOUT']);
    // Not an outage: no retrying line, no backoff, ready throughout.
    expect(h.retrying).toEqual([]);
    expect(h.stopped).toEqual([]);
    h.newSession();
    // The same source transaction again (a restart streams it from the same commit LSN).
    h.commit(h.begin('long', 1, txn.commitLsn).txn);
    await h.idle();
    expect(h.stopped.map((e) => e.code)).toEqual(['KAFKA_TXN_TIMEOUT']);
    expect(h.stopped[0]!.hint).toContain('delivery.transactionTimeout');
    expect(h.confirmed).toEqual([]);
  });

  it('a transaction the broker timed out while its commit kept failing (a coordinator outage longer than the timeout), twice: the outage\'s doing, retried with backoff as the outage, no halt; committed once Kafka is back (before: KAFKA_TXN_TIMEOUT at the second)', async () => {
    const down = () => new RelayError('KAFKA_UNAVAILABLE', 'commit timed out: coordinator not available (fake)', { retriable: true, details: { txnRetriable: true } });
    const timeout = () => new RelayError('KAFKA_TXN_TIMEOUT', 'transaction timed out (fake)', { retriable: true });
    const h = new EngineHarness({ guarantee: 'exactly-once', sink: new FakeSink().scriptCommits(down(), timeout(), down(), timeout(), 'ok') });
    const { txn } = h.begin('t', 1);
    h.commit(txn);
    await h.idle();
    await vi.waitFor(() => expect(h.restarts).toHaveLength(1));
    h.newSession();
    // The same source transaction again (a restart streams it from the same commit LSN).
    h.commit(h.begin('t', 1, txn.commitLsn).txn);
    await h.idle();
    await vi.waitFor(() => expect(h.restarts).toHaveLength(2));
    expect(h.stopped).toEqual([]);
    h.newSession();
    const end = h.commit(h.begin('t', 1, txn.commitLsn).txn);
    await h.idle();
    expect(h.restarts.map((e) => e.code)).toEqual(['KAFKA_TXN_TIMEOUT', 'KAFKA_TXN_TIMEOUT']);
    expect(h.stopped).toEqual([]);
    expect(h.sink.commits).toHaveLength(1);
    expect(h.lastConfirmed).toBe(end);
    expect(h.recovered).toBe(1);
  });

  // Kafka says only "not authorized" for a topic's ACL: the outage's line and its fix now name the topics refused.
  it.each(['at-least-once', 'exactly-once', 'at-most-once'] as const)('%s: a produce refused for a topic ACL is an outage whose error names the refused request\'s topics', async (guarantee) => {
    const denied = new RelayError('KAFKA_AUTH', 'Kafka refused access: TOPIC_AUTHORIZATION_FAILED (fake)', { retriable: true, details: { kafkaError: 'TOPIC_AUTHORIZATION_FAILED' } });
    const h = new EngineHarness({ guarantee, sink: new FakeSink().scriptSends(denied) });
    const { txn } = h.begin('t', 0);
    h.push(txn, 't.0', undefined, 'outbox.Ordr');
    h.commit(txn);
    await settle(20);
    const error = guarantee === 'at-most-once' ? h.droppedErrors[0] : h.retrying[0];
    expect(error).toBeDefined();
    expect(error!.message).toBe('Kafka refused access: TOPIC_AUTHORIZATION_FAILED (fake) (the refused request\'s topic: "outbox.Ordr")');
    expect(error!.hint).toMatch(/^grant the relay's principal WRITE and DESCRIBE on "outbox\.Ordr"/);
    h.engine.stop();
  });

  it.each(['send', 'commit'] as const)('restarts the source after a failed %s with backoff, as one outage (an acknowledged produce ends none: only a commit delivers), and gives up once it outlasts retry.maxDuration', async (at) => {
    vi.useFakeTimers({ toFake: ['Date'] });
    // E.g. TOPIC_AUTHORIZATION_FAILED after an ACL change, or a partition without a leader: every session fails the
    // same way; at the commit, e.g. no access to the checkpoint topic only (every produce is acknowledged).
    const auth = () => new RelayError('KAFKA_AUTH', 'Kafka refused access: TOPIC_AUTHORIZATION_FAILED (fake)', { retriable: true });
    const failures = Array.from({ length: 4 }, auth);
    const sink = at === 'send' ? new FakeSink().scriptSends(...failures) : new FakeSink().scriptCommits(...failures);
    const h = new EngineHarness({ guarantee: 'exactly-once', retry: { maxDurationMs: 10_000 }, sink });
    for (let i = 0; i < 4 && h.stopped.length === 0; i++) {
      if (i > 0) h.newSession();
      h.transaction('t', 1);
      await h.idle();
      vi.setSystemTime(Date.now() + 5_000);
    }
    expect(h.retrying.map((e) => e.code)).toEqual(['KAFKA_AUTH', 'KAFKA_AUTH']);
    expect(h.recovered).toBe(0);
    expect(h.restarts).toHaveLength(2);
    expect(h.stopped.map((e) => e.code)).toEqual(['RETRIES_EXHAUSTED']);
    expect(h.confirmed).toEqual([]);
  });

  it.each(['send', 'commit'] as const)('fenced at a %s (another instance registered the transactional id): drops what it did not commit, aborts nothing, restarts the source after a backoff without counting an outage; a commit resets the count', async (at) => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const sink = at === 'send' ? new FakeSink().scriptSends('ok', fenced()) : new FakeSink().scriptCommits(fenced());
    const h = new EngineHarness({ guarantee: 'exactly-once', retry: { maxDurationMs: 10_000 }, sink });
    h.transaction('t', 3);
    await h.idle();
    expect(h.restarts.map((e) => e.code)).toEqual(['PRODUCER_FENCED']);
    expect(h.stopped).toEqual([]);
    // Not an outage: no retry line; the fencing instance aborted the open transaction.
    expect(h.retrying).toEqual([]);
    expect(h.sink.aborts).toBe(0);
    expect(h.sink.commits).toEqual([]);
    expect(h.confirmed).toEqual([]);
    // 6 s later the next session (the slot was free, the sink claimed it again) streams the transaction again, is
    // fenced again, and the one after commits it.
    vi.setSystemTime(Date.now() + 6_000);
    h.newSession();
    if (at === 'send') h.sink.scriptSends('ok', fenced());
    else h.sink.scriptCommits(fenced());
    h.transaction('t', 3);
    await h.idle();
    expect(h.restarts.map((e) => e.code)).toEqual(['PRODUCER_FENCED', 'PRODUCER_FENCED']);
    h.newSession();
    const end = h.transaction('t', 3);
    await h.idle();
    expect(h.sink.visible).toEqual(['t.0', 't.1', 't.2']);
    expect(h.lastConfirmed).toBe(end);
    // A fence 11 s after the first and 5 s after the last: without that commit, retry.maxDuration of fences (a
    // halt); after it, the start of a new count, so a restart.
    vi.setSystemTime(Date.now() + 5_000);
    h.sink.scriptSends(fenced());
    h.transaction('u', 1);
    await h.idle();
    expect(h.restarts.map((e) => e.code)).toEqual(['PRODUCER_FENCED', 'PRODUCER_FENCED', 'PRODUCER_FENCED']);
    expect(h.stopped).toEqual([]);
  });

  // A fence met while a refused record of a request of several events was isolated (the abort after the refusal, or
  // the one-by-one probe's send and abort): it halted with the record's code, its fix offering a slot advance past a
  // record never named, and the relay stayed halted, not ready, instead of restarting or waiting as a standby.
  it.each([
    ['the abort after the refusal', () => new FakeSink().scriptSends(new RelayError('RECORD_TOO_LARGE', 'MESSAGE_TOO_LARGE (fake)')).scriptAborts(fenced())],
    ['the probe', () => new FakeSink().scriptSends(new RelayError('RECORD_TOO_LARGE', 'MESSAGE_TOO_LARGE (fake)'), fenced()).scriptAborts('ok', fenced())],
  ])('fenced in %s after Kafka refused a record of a request of several events: a fence (restart, nothing committed), not a halt with the record\'s code', async (_, sink) => {
    const h = new EngineHarness({ guarantee: 'exactly-once', retry: { recordMaxAttempts: 3 }, limits: { batchMaxEvents: 10 }, sink: sink() });
    h.transaction('t1', 1);
    h.transaction('t2', 1);
    await vi.waitFor(() => expect(h.restarts.length + h.stopped.length).toBeGreaterThan(0));
    expect(h.stopped).toEqual([]);
    expect(h.restarts.map((e) => e.code)).toEqual(['PRODUCER_FENCED']);
    expect(h.sink.visible).toEqual([]);
  });

  // The tests above fake only Date: the backoff itself went unchecked, and a restart at once (two relays taking the
  // id from each other in a tight loop) would have passed them.
  it('fenced: the source restarts only once the backoff ran out, and the backoff grows with each fence without a commit', async () => {
    backoffsAtCeiling();
    const h = new EngineHarness({ guarantee: 'exactly-once', retry: { initialDelayMs: 1000, maxDelayMs: 8000, maxDurationMs: 60_000 }, sink: new FakeSink().scriptSends(fenced(), fenced(), fenced()) });
    for (const [i, backoffMs] of [1000, 2000, 4000].entries()) {
      if (i > 0) h.newSession();
      h.transaction('t', 1);
      await vi.advanceTimersByTimeAsync(backoffMs - 1);
      expect(h.restarts, `fence ${i + 1}: no restart before ${backoffMs} ms`).toHaveLength(i);
      await vi.advanceTimersByTimeAsync(1);
      expect(h.restarts.map((e) => e.code), `fence ${i + 1}: restarted at ${backoffMs} ms`).toEqual(Array(i + 1).fill('PRODUCER_FENCED'));
    }
    expect(h.stopped).toEqual([]);
    expect(h.retrying).toEqual([]);
  });

  it('fenced again and again without a commit: restarts each time, until retry.maxDuration of it halts, naming the likely cause', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const h = new EngineHarness({ guarantee: 'exactly-once', retry: { maxDurationMs: 10_000 }, sink: new FakeSink().scriptSends(fenced(), fenced(), fenced(), fenced()) });
    for (let i = 0; i < 4 && h.stopped.length === 0; i++) {
      if (i > 0) h.newSession();
      h.transaction('t', 1);
      await h.idle();
      vi.setSystemTime(Date.now() + 4_000);
    }
    // Fences at 0, 4 and 8 s restart the source; the one at 12 s comes after retry.maxDuration of them.
    expect(h.restarts.map((e) => e.code)).toEqual(['PRODUCER_FENCED', 'PRODUCER_FENCED', 'PRODUCER_FENCED']);
    expect(h.stopped.map((e) => e.code)).toEqual(['PRODUCER_FENCED']);
    expect(h.stopped[0]!.message).toContain('fenced 4 times in 12 s without committing anything');
    expect(h.stopped[0]!.hint).toContain('slot name');
    expect(h.retrying).toEqual([]);
    expect(h.sink.commits).toEqual([]);
    expect(h.confirmed).toEqual([]);
  });

  it('two fences retry.maxDuration apart with nothing committed between them (an idle outbox): the second restarts too, it does not halt', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const h = new EngineHarness({ guarantee: 'exactly-once', retry: { maxDurationMs: 10_000 }, sink: new FakeSink().scriptSends(fenced(), fenced()) });
    h.transaction('t', 1);
    await h.idle();
    vi.setSystemTime(Date.now() + 11_000);
    h.newSession();
    h.transaction('t', 1);
    await h.idle();
    // Before: 'fenced 2 times in 11 s without committing anything', a halt blaming two relays fighting over the id.
    expect(h.restarts.map((e) => e.code)).toEqual(['PRODUCER_FENCED', 'PRODUCER_FENCED']);
    expect(h.stopped).toEqual([]);
  });

  it('fenced, told only by the abort (librdkafka fails a fenced producer\'s queued records as purged): restarts as fenced, not as a Kafka outage', async () => {
    const purged = new RelayError('KAFKA_UNAVAILABLE', 'Kafka produce failed: Local: Purged in queue (fake)', { retriable: true });
    const h = new EngineHarness({ guarantee: 'exactly-once', sink: new FakeSink().scriptSends(purged).scriptAborts(fenced()) });
    h.transaction('t', 1);
    await h.idle();
    expect(h.stopped).toEqual([]);
    expect(h.retrying).toEqual([]);
    expect(h.restarts.map((e) => e.code)).toEqual(['PRODUCER_FENCED']);
    expect(h.sink.commits).toEqual([]);
  });

  it('a record Kafka refuses: names that event, not the first of the request, found by producing the request again one event per request in a probe transaction that is aborted; halts, nothing committed or confirmed', async () => {
    // The request holds t1.0, t2.0 and t2.1; alone, t1.0 passes and t2.0 is refused.
    const h = new EngineHarness({ guarantee: 'exactly-once', retry: { recordMaxAttempts: 1 }, limits: { batchMaxEvents: 10 }, sink: new FakeSink().scriptSends(recordTooLarge(), 'ok', recordTooLarge()) });
    h.transaction('t1', 1);
    const { txn } = h.begin('t2', 2);
    h.commit(txn);
    await h.idle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['t1.0', 't2.0', 't2.1'], ['t1.0'], ['t2.0']]);
    expect(h.sink.aborts).toBe(2);
    // The probe produces after the first abort: a producer that is unusable is replaced there.
    expect(h.sink.abortsThen).toEqual(['produce', 'produce']);
    expect(h.sink.commits).toEqual([]);
    expect(h.sink.visible).toEqual([]);
    expect(h.confirmed).toEqual([]);
    expect(h.stopped).toHaveLength(1);
    const halt = h.stopped[0]!;
    expect(halt.code).toBe('RECORD_TOO_LARGE');
    expect(halt.message).toBe(`cannot produce event "t2.0" (commit LSN ${formatLsn(txn.commitLsn)}) to topic "t": MESSAGE_TOO_LARGE (fake)`);
    expect(halt.details).toMatchObject({ eventId: 't2.0', lsn: formatLsn(txn.commitLsn) });
    expect(halt.hint).toContain('cannot dead-letter or skip a record Kafka refused inside a transaction');
    expect(halt.hint).not.toContain('run with delivery.onPoison=dead-letter');
  });

  it('a probe attempt that fails otherwise (a record purged by the abort before it) is aborted and tried again, then names the refused event', async () => {
    const h = new EngineHarness({ guarantee: 'exactly-once', retry: { recordMaxAttempts: 1 }, limits: { batchMaxEvents: 10 }, sink: new FakeSink().scriptSends(recordTooLarge(), kafkaDown(), 'ok', recordTooLarge()) });
    h.transaction('t1', 1);
    h.transaction('t2', 1);
    await h.idle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['t1.0', 't2.0'], ['t1.0'], ['t1.0'], ['t2.0']]);
    expect(h.sink.aborts).toBe(3);
    expect(h.sink.visible).toEqual([]);
    expect(h.stopped.map((e) => e.details.eventId)).toEqual(['t2.0']);
  });

  it('a record Kafka refuses in a request of one event: names it without a probe', async () => {
    const h = new EngineHarness({ guarantee: 'exactly-once', retry: { recordMaxAttempts: 1 }, sink: new FakeSink().scriptSends(recordTooLarge()) });
    h.transaction('t1', 1);
    await h.idle();
    expect(h.sink.calls).toHaveLength(1);
    expect(h.sink.aborts).toBe(1);
    expect(h.stopped.map((e) => e.details.eventId)).toEqual(['t1.0']);
  });

  // Isolated after the session ended (its PostgreSQL connection lost while the request was in flight), the record's
  // aborts said a produce follows ('produce': an unusable producer registers the transactional id again, without the
  // slot's lock, fencing an instance that may hold the slot by then), and the probe produced the ended session's
  // events and halted. Left to the next session, the transaction streams again and the record is isolated there.
  it('a record Kafka refused in a request of several events, answered after the session ended: no probe, the abort tells the sink only a claim follows, no halt; the next session isolates the record and halts naming it', async () => {
    const { h, t1, t2 } = await refusedAsSessionEnds(1);
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['t1.0', 't2.0']]);
    expect(h.sink.abortsThen).toEqual(['claim']);
    expect(h.stopped).toEqual([]);
    expect(h.restarts).toEqual([]);
    expect(h.retrying).toEqual([]);
    expect(h.confirmed).toEqual([]);
    await streamedAgain(h, t1, t2);
    expect(h.sink.calls.slice(1).map((c) => c.ids)).toEqual([['t1.0', 't2.0'], ['t1.0'], ['t2.0']]);
    expect(h.stopped.map((e) => e.details.eventId)).toEqual(['t2.0']);
    expect(h.sink.visible).toEqual([]);
  });

  // The isolation had begun (the session went on), and its abort waited for the broker while the session ended: the
  // sink was told 'produce' when the abort began, so the abort that failed then, and each retry of it after, had an
  // unusable producer replaced, registering the transactional id without the slot's lock.
  it('a record Kafka refused in a request of several events, the session ending while the abort waits for the broker: that abort, failing, and its retry tell the sink only a claim follows; no probe, no halt', async () => {
    const h = new EngineHarness({ guarantee: 'exactly-once', retry: { recordMaxAttempts: 1 }, limits: { batchMaxEvents: 10 }, sink: new FakeSink().scriptSends(recordTooLarge()).scriptAborts('hang') });
    h.transaction('t1', 1);
    h.transaction('t2', 1);
    await vi.waitFor(() => expect(h.sink.pendingAbort).toBeDefined());
    h.engine.endSession(h.tracker);
    h.sink.pendingAbort!.reject(kafkaDown());
    await h.idle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['t1.0', 't2.0']]);
    // The failed abort, its retry, and discard's.
    expect(h.sink.abortsThen).toEqual(['claim', 'claim', 'claim']);
    expect(h.stopped).toEqual([]);
    expect(h.restarts).toEqual([]);
    expect(h.confirmed).toEqual([]);
  });

  // Not isolated, the refusal was not counted either: each session that ended so was one attempt of the record more
  // than retry.recordMaxAttempts (here 3 refused requests holding t2.0 with 2).
  it('a request Kafka refused as its session ended counts as an attempt of each of its records: with retry.recordMaxAttempts 2, the next session\'s isolation halts on the record at its second attempt, without a retry', async () => {
    const { h, t1, t2 } = await refusedAsSessionEnds(2);
    expect(h.stopped).toEqual([]);
    await streamedAgain(h, t1, t2);
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['t1.0', 't2.0'], ['t1.0', 't2.0'], ['t1.0'], ['t2.0']]);
    expect(h.recordRetries).toEqual([]);
    expect(h.restarts).toEqual([]);
    expect(h.stopped).toHaveLength(1);
    expect(h.stopped[0]).toMatchObject({ code: 'RECORD_TOO_LARGE', details: { eventId: 't2.0', attempts: 2 } });
    expect(h.sink.visible).toEqual([]);
  });

  it('a record Kafka refuses is retried as the other guarantees retry one (retry.recordMaxAttempts): the transaction aborted, the source streams it again from the checkpoint after a backoff, and a topic created meanwhile takes it, committed once; before, exactly-once halted at once and stayed halted until a restart', async () => {
    const h = new EngineHarness({ guarantee: 'exactly-once', retry: { recordMaxAttempts: 3 }, sink: new FakeSink().scriptSends(missingTopic('t'), missingTopic('t'), 'ok') });
    const { txn } = h.begin('t1', 1);
    h.commit(txn);
    for (const restarts of [1, 2]) {
      await vi.waitFor(() => expect(h.restarts).toHaveLength(restarts));
      // The relay's restart: a new session from the checkpoint streams the same transaction again.
      h.newSession();
      h.commit(h.begin('t1', 1, txn.commitLsn).txn);
    }
    await vi.waitFor(() => expect(h.sink.commits).toHaveLength(1));
    expect(h.recordRetries).toEqual(['t1.0 then halt', 't1.0 then halt']);
    expect(h.restarts.map((e) => e.code)).toEqual(['TOPIC_NOT_FOUND', 'TOPIC_NOT_FOUND']);
    expect(h.sink.aborts).toBe(2);
    expect(h.sink.visible).toEqual(['t1.0']);
    expect(h.stopped).toEqual([]);
    expect(h.retrying).toEqual([]);
  });

  it('exactly-once, a record Kafka refuses: the source restarts only once the backoff ran out, a longer one each time', async () => {
    backoffsAtCeiling();
    const h = new EngineHarness({ guarantee: 'exactly-once', retry: { initialDelayMs: 1000, maxDelayMs: 8000, recordMaxAttempts: 3 }, sink: new FakeSink().scriptSends(missingTopic('t'), missingTopic('t'), 'ok') });
    const { txn } = h.begin('t1', 1);
    h.commit(txn);
    for (const [i, backoffMs] of [1000, 2000].entries()) {
      await vi.advanceTimersByTimeAsync(backoffMs - 1);
      expect(h.restarts, `refusal ${i + 1}: no restart before ${backoffMs} ms`).toHaveLength(i);
      await vi.advanceTimersByTimeAsync(1);
      expect(h.restarts, `refusal ${i + 1}: restarted at ${backoffMs} ms`).toHaveLength(i + 1);
      h.newSession();
      h.commit(h.begin('t1', 1, txn.commitLsn).txn);
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(h.sink.visible).toEqual(['t1.0']);
    expect(h.stopped).toEqual([]);
  });

  it('a record Kafka refuses at every attempt: halts after retry.recordMaxAttempts, naming the event and the attempts, nothing committed', async () => {
    const h = new EngineHarness({ guarantee: 'exactly-once', retry: { recordMaxAttempts: 2 }, sink: new FakeSink().scriptSends(missingTopic('t'), missingTopic('t')) });
    const { txn } = h.begin('t1', 1);
    h.commit(txn);
    await vi.waitFor(() => expect(h.restarts).toHaveLength(1));
    h.newSession();
    h.commit(h.begin('t1', 1, txn.commitLsn).txn);
    await vi.waitFor(() => expect(h.stopped).toHaveLength(1));
    expect(h.stopped[0]).toMatchObject({ code: 'TOPIC_NOT_FOUND', details: { eventId: 't1.0', attempts: 2 } });
    expect(h.restarts).toHaveLength(1);
    expect(h.sink.commits).toEqual([]);
    expect(h.confirmed).toEqual([]);
  });

  it('a request refused as too large while each of its events alone passes: halts naming the range and delivery.batchMaxBytes', async () => {
    const h = new EngineHarness({ guarantee: 'exactly-once', sink: new FakeSink().scriptSends(recordTooLarge(), 'ok', 'ok') });
    h.transaction('t1', 1);
    h.transaction('t2', 1);
    await h.idle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['t1.0', 't2.0'], ['t1.0'], ['t2.0']]);
    expect(h.sink.aborts).toBe(2);
    expect(h.sink.visible).toEqual([]);
    expect(h.stopped).toHaveLength(1);
    expect(h.stopped[0]!.message).toContain('holding event "t1.0" (commit LSN');
    expect(h.stopped[0]!.message).toContain('to event "t2.0" (commit LSN');
    expect(h.stopped[0]!.message).toContain('produced again one per request, none was refused');
    expect(h.stopped[0]!.hint).toContain('lower delivery.batchMaxBytes');
  });

  it('ends a batch at the last source transaction it completes, so that a commit follows: with batches cut by size alone a stream of transactions larger than a batch rarely reached a commit (Kafka\'s transaction timeout then aborted it, over and over)', async () => {
    const h = new EngineHarness({ guarantee: 'exactly-once', limits: { batchMaxEvents: 4 } });
    const ends = ['a', 'b', 'c', 'd'].map((name) => h.transaction(name, 3));
    // A transaction larger than a batch still goes out in batches, and commits after its last one.
    const big = h.transaction('big', 6);
    await h.idle();
    // Before: [a.0 a.1 a.2 b.0] [b.1 b.2 c.0 c.1] [c.2 d.0 d.1 d.2], one commit after all four.
    expect(h.sink.calls.map((c) => c.ids.join(' '))).toEqual(['a.0 a.1 a.2', 'b.0 b.1 b.2', 'c.0 c.1 c.2', 'd.0 d.1 d.2', 'big.0 big.1 big.2 big.3', 'big.4 big.5']);
    expect(h.sink.visibleAtCommits).toEqual([3, 6, 9, 12, 18]);
    expect(h.confirmed).toEqual([...ends, big]);
  });

  it('a replay below the checkpoint commits the checkpoint at its floor with the commit time of that floor, not of a replayed transaction', async () => {
    const h = new EngineHarness({ guarantee: 'exactly-once' });
    // The checkpoint the replay started below (delivery-strategy: startFrom with the checkpoint read), and its commit time.
    const checkpointTime = Date.parse('2026-12-05T12:00:00Z');
    h.engine.startFrom(0x9000n, checkpointTime);
    // A replayed source transaction, committed days before the checkpoint's.
    const replayed = h.tracker.begin(0x100n, Date.parse('2026-12-01T00:00:00Z'), 1);
    h.push(replayed, 'old.0');
    h.tracker.commit(replayed, 0x110n);
    h.engine.committed(replayed);
    await h.idle();
    expect(h.lastConfirmed).toBe(0x110n);
    // Before: { lsn: 0/9000, commitTimeMs: 2026-12-01 }, a record pairing the checkpoint's position with another
    // transaction's time (status, and the republish --since a lost slot's or a failover's fix names, went back days).
    expect(h.sink.commits.map((c) => ({ lsn: c.lsn, commitTimeMs: c.commitTimeMs }))).toEqual([{ lsn: 0x9000n, commitTimeMs: checkpointTime }]);
  });

  it('keeps producing a transaction larger than the window: events leave the window once produced, only the commit confirms', async () => {
    const h = new EngineHarness({ guarantee: 'exactly-once', limits: { maxInFlightEvents: 4, batchMaxEvents: 2 } });
    const { txn } = h.begin('big', 3);
    await settle();
    expect(h.engine.inFlightEvents).toBe(0);
    for (let i = 3; i < 10; i++) h.push(txn, `big.${i}`);
    const end = h.commit(txn);
    await h.idle();
    expect(h.sink.commits).toHaveLength(1);
    expect(h.sink.visible).toHaveLength(10);
    expect(h.lastConfirmed).toBe(end);
  });
});

describe('DeliveryEngine, at-most-once', () => {
  it('reports the position before the hand-off and hands off only whole source transactions', async () => {
    const h = new EngineHarness({ guarantee: 'at-most-once' });
    h.reportGate = deferred();
    const { txn } = h.begin('t', 2);
    await settle();
    expect(h.sink.calls).toEqual([]);
    const end = h.commit(txn);
    await settle();
    // Confirmed and being reported; Kafka has not seen it yet.
    expect(h.lastConfirmed).toBe(end);
    expect(h.reports).toBe(1);
    expect(h.sink.calls).toEqual([]);
    h.reportGate.resolve();
    await h.idle();
    expect(h.sink.written).toEqual(['t.0', 't.1']);
  });

  it('a session that ends before PostgreSQL was shown to hold the position withholds the batch: never sent (a restart from the older position would send it twice), no Kafka outage', async () => {
    const h = new EngineHarness({ guarantee: 'at-most-once' });
    h.reportGate = deferred();
    h.transaction('t', 2);
    await settle();
    expect(h.reports).toBe(1);
    // The replication connection drops while the position is being checked.
    h.reportable = false;
    h.engine.endSession(h.tracker);
    h.reportGate.resolve();
    await h.idle();
    expect(h.sink.calls).toEqual([]);
    expect(h.withheld).toEqual([2]);
    expect(h.engine.inFlightEvents).toBe(0);
    expect(h.retrying).toEqual([]);
    // The next session's hand-offs go as usual.
    h.reportable = true;
    h.newSession();
    const end = h.transaction('u', 1);
    await h.idle();
    expect(h.sink.written).toEqual(['u.0']);
    expect(h.lastConfirmed).toBe(end);
  });

  it('a position check that takes longer than the stall timeout is no Kafka stall: Kafka has not seen the batch yet', async () => {
    const h = new EngineHarness({ guarantee: 'at-most-once', stallTimeoutMs: 20 });
    h.reportGate = deferred();
    h.transaction('t', 1);
    await sleep(1500);
    expect(h.retrying).toEqual([]);
    h.reportGate.resolve();
    await h.idle();
    expect(h.sink.written).toEqual(['t.0']);
    expect(h.retrying).toEqual([]);
    expect(h.recovered).toBe(0);
  });

  it('a session that ends inside a transaction hands off none of it', async () => {
    const h = new EngineHarness({ guarantee: 'at-most-once' });
    const end = h.transaction('done', 2);
    h.begin('open', 3);
    await settle();
    // Not handed off before its commit: a crash then would lose nothing of it, and a restart sends it once.
    expect(h.sink.written).toEqual(['done.0', 'done.1']);
    h.engine.endSession(h.tracker);
    await h.idle();
    expect(h.sink.written).toEqual(['done.0', 'done.1']);
    expect(h.confirmed).toEqual([end]);
  });

  it('confirms a committed transaction larger than one batch before its first batch is handed off', async () => {
    // batchMaxEvents 2 (the harness default): the transaction's 5 events go in three batches.
    const h = new EngineHarness({ guarantee: 'at-most-once', sink: new FakeSink().scriptSends('hang') });
    const before = h.transaction('a', 1);
    const end = h.transaction('t', 5);
    await settle();
    // Kafka was handed the first batch: the position covering the whole transaction was reported first, so a crash now loses events and never re-sends them.
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['a.0', 't.0']]);
    expect(h.confirmed).toEqual([before, end]);
    h.sink.calls[0]!.answer.resolve();
    await h.idle();
    expect(h.sink.written).toEqual(['a.0', 't.0', 't.1', 't.2', 't.3', 't.4']);
    expect(h.confirmed).toEqual([before, end]);
  });

  it('the rest of a transaction counted at an earlier hand-off goes in a batch of its own, sent when the session ends during its position check; before, batched with the next transaction, it was withheld with it and lost (model seed 32)', async () => {
    // batchMaxEvents 2 (the harness default): t's first batch counts all of t, and PostgreSQL holds t's end.
    const h = new EngineHarness({ guarantee: 'at-most-once', sink: new FakeSink().scriptSends('hang') });
    const end = h.transaction('t', 3);
    await settle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['t.0', 't.1']]);
    h.transaction('u', 1);
    // The next position check waits while the replication connection drops.
    h.reportGate = deferred();
    h.sink.calls[0]!.answer.resolve();
    await settle();
    h.reportable = false;
    h.engine.endSession(h.tracker);
    h.reportGate.resolve();
    await h.idle();
    // Before, [t.2, u.0] was one hand-off, withheld whole: the next session starts at t's end and never sent t.2.
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['t.0', 't.1'], ['t.2']]);
    // u is left to the next session, which starts there.
    expect(h.held).toBe(end);
  });

  it('positionHeldEvents: the events handed off and unanswered, and the queued rest of a transaction counted at their hand-off; not what no hand-off counted', async () => {
    // What a stop whose grace runs out now leaves unsent for good: no session streams these again.
    const h = new EngineHarness({ guarantee: 'at-most-once', sink: new FakeSink().scriptSends('hang') });
    h.transaction('a', 1);
    h.transaction('t', 5);
    await settle();
    h.transaction('u', 2);
    await settle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['a.0', 't.0']]);
    expect({ inFlight: h.engine.inFlightEvents, positionHeld: h.engine.positionHeldEvents }).toEqual({ inFlight: 8, positionHeld: 6 });
    h.sink.calls[0]!.answer.resolve();
    await h.idle();
    expect(h.engine.positionHeldEvents).toBe(0);
  });

  it('a transaction larger than the window: hands it off until the window reopens, so the source reads on to its commit', async () => {
    // Window 6 events, batches of 2: the 6th event fills it and the source stops reading. Once a batch left, 4
    // remain: no longer full, but not yet half empty, so the source still reads nothing; the hand-off goes on.
    const h = new EngineHarness({ guarantee: 'at-most-once', limits: { maxInFlightEvents: 6 } });
    const { txn, room } = h.begin('big', 6);
    expect(room).toBe(false);
    await settle(10);
    expect(h.windowOpens).toBe(1);
    expect(h.sink.written).toEqual(['big.0', 'big.1', 'big.2', 'big.3']);
    // The source reads again: the rest of the transaction and its commit.
    for (let i = 6; i < 9; i++) h.push(txn, `big.${i}`);
    const end = h.commit(txn);
    await h.idle();
    expect(h.sink.written).toEqual(Array.from({ length: 9 }, (_, i) => `big.${i}`));
    expect(h.lastConfirmed).toBe(end);
  });

  // A closed window let any uncommitted transaction through: with Kafka slow, t went out in part behind a, before
  // its commit; the connection dropped, and the next session streamed t again: t.0 was sent twice.
  it('a small transaction behind committed ones, with the window closed by a slow Kafka: not handed off before its commit, so a lost connection never sends it twice', async () => {
    // Window 10 events (batches of 5, one in flight). z is handed off and Kafka is slow; a commits; t's first two
    // events fill the window, and the source stops reading before t's commit.
    const h = new EngineHarness({ guarantee: 'at-most-once', limits: { maxInFlightEvents: 10, batchMaxEvents: 5 }, sink: new FakeSink().scriptSends('hang', 'hang') });
    h.transaction('z', 4);
    await settle();
    h.transaction('a', 4);
    const { txn, room } = h.begin('t', 2);
    expect(room).toBe(false);
    // Kafka takes z: 6 left, over half, so the window stays closed. a goes alone.
    h.sink.calls[0]!.answer.resolve();
    await settle(10);
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['z.0', 'z.1', 'z.2', 'z.3'], ['a.0', 'a.1', 'a.2', 'a.3']]);
    // The connection drops before t's commit was read; the next session streams t again from a's end.
    h.reportable = false;
    h.engine.endSession(h.tracker);
    h.sink.calls[1]!.answer.resolve();
    await h.idle();
    h.reportable = true;
    h.newSession();
    h.commit(h.begin('t', 2, txn.commitLsn).txn);
    await h.idle();
    expect(h.sink.written).toEqual(['z.0', 'z.1', 'z.2', 'z.3', 'a.0', 'a.1', 'a.2', 'a.3', 't.0', 't.1']);
  });

  it('hands nothing more off once the session can report no position: what is queued is dropped unconfirmed, and the next session streams it again', async () => {
    // batchMaxEvents 2: a.0 and a.1 are handed off (Kafka hangs), a.2 was counted with them.
    const h = new EngineHarness({ guarantee: 'at-most-once', sink: new FakeSink().scriptSends('hang') });
    const first = h.transaction('a', 3);
    h.transaction('b', 2);
    h.transaction('c', 1);
    await settle();
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['a.0', 'a.1']]);
    expect(h.confirmed).toEqual([first]);
    // The replication connection dropped: a hand-off now would reach Kafka with PostgreSQL not knowing its
    // position, and a crash before the next session reported it would send it again.
    h.reportable = false;
    h.engine.endSession(h.tracker);
    h.sink.calls[0]!.answer.resolve();
    await h.idle();
    expect(h.sink.written).toEqual(['a.0', 'a.1', 'a.2']);
    expect(h.confirmed).toEqual([first]);
    expect(h.engine.inFlightEvents).toBe(0);
    h.reportable = true;
    h.newSession();
    h.transaction('b', 2);
    const end = h.transaction('c', 1);
    await h.idle();
    expect(h.sink.written).toEqual(['a.0', 'a.1', 'a.2', 'b.0', 'b.1', 'c.0']);
    expect(h.lastConfirmed).toBe(end);
  });

  it('an unmappable row in a committed transaction meets the poison policy before any of the transaction is handed off: a halt leaves all of it to the restart, sent once', async () => {
    // Handed off up to the unmappable row and then halted, the transaction was streamed again at the restart and
    // its first events sent twice.
    const h = new EngineHarness({ guarantee: 'at-most-once' });
    const before = h.transaction('a', 1);
    const { txn } = h.begin('t', 3);
    h.push(txn, 'bad', new RelayError('RECORD_REQUIRED_NULL', 'payload is NULL'));
    h.push(txn, 't.after');
    h.commit(txn);
    await h.idle();
    expect(h.stopped.map((e) => e.code)).toEqual(['RECORD_REQUIRED_NULL']);
    expect(h.sink.written).toEqual(['a.0']);
    expect(h.confirmed).toEqual([before]);
  });

  it('an unmappable row skipped ahead of its transaction: the rest is handed off whole, in order, and the transaction confirmed', async () => {
    const decidedWhen: string[][] = [];
    const h = new EngineHarness({
      guarantee: 'at-most-once',
      poison: async () => {
        decidedWhen.push([...h.sink.written]);
        return 'skip';
      },
    });
    const { txn } = h.begin('t', 3);
    h.push(txn, 'bad', new RelayError('RECORD_REQUIRED_NULL', 'payload is NULL'));
    h.push(txn, 't.after');
    const end = h.commit(txn);
    await h.idle();
    expect(decidedWhen).toEqual([[]]);
    expect(h.sink.written).toEqual(['t.0', 't.1', 't.2', 't.after']);
    expect(h.confirmed).toEqual([end]);
    expect(h.engine.inFlightEvents).toBe(0);
  });

  it('times no produce round trip for a hand-off: the events count as delivered before Kafka answers', async () => {
    const h = new EngineHarness({ guarantee: 'at-most-once' });
    h.transaction('t', 3);
    await h.idle();
    expect(h.sink.written).toEqual(['t.0', 't.1', 't.2']);
    expect(h.latencies.length).toBeGreaterThan(0);
    expect(h.latencies.every((ms) => ms === undefined)).toBe(true);
  });

  it('drops a batch Kafka refuses, counts it, and goes on without retrying', async () => {
    const h = new EngineHarness({ guarantee: 'at-most-once', sink: new FakeSink().scriptSends(kafkaDown()) });
    h.transaction('lost', 2);
    const end = h.transaction('kept', 1);
    await h.idle();
    expect(h.dropped).toEqual([2]);
    expect(h.sink.written).toEqual(['kept.0']);
    expect(h.lastConfirmed).toBe(end);
    expect(h.recovered).toBe(1);
  });

  it('a failure no retry mends and no record is at fault for (brokers without the idempotent producer): the batch is dropped and delivery halts at once; before, each later hand-off lost another batch until retry.maxDuration', async () => {
    const h = new EngineHarness({ guarantee: 'at-most-once', sink: new FakeSink().scriptSends(noIdempotentProducer(), noIdempotentProducer()) });
    h.transaction('lost', 2);
    for (let i = 0; i < 5; i++) await settle();
    h.transaction('next', 1);
    for (let i = 0; i < 5; i++) await settle();
    expect(h.dropped).toEqual([2]);
    expect(h.stopped.map((e) => e.code)).toEqual(['CONFIG_INVALID']);
    expect(h.sink.calls.map((c) => c.ids)).toEqual([['lost.0', 'lost.1']]);
  });

  it('after a dropped batch hands nothing more off until Kafka names a leader again: what follows waits unconfirmed, then goes, and nothing more is lost', async () => {
    // Before: each later batch was handed off at once into the outage and dropped too (kafkajs lost everything
    // committed during a 45 s loss of 2 of 3 brokers).
    const sink = new FakeSink().scriptSends(kafkaDown());
    sink.leaders = kafkaDown();
    const h = new EngineHarness({ guarantee: 'at-most-once', sink });
    const lost = h.transaction('lost', 2);
    h.transaction('waiting', 2);
    const end = h.transaction('after', 1);
    // Until the leaders were checked again after the drop (a fixed 30 ms was too short on a loaded machine).
    await vi.waitFor(() => expect(sink.leaderChecks.length).toBeGreaterThan(1), { timeout: 10_000 });
    expect(h.dropped).toEqual([2]);
    expect(sink.calls.map((c) => c.ids)).toEqual([['lost.0', 'lost.1']]);
    // Held in the window, not confirmed: a crash now streams them again.
    expect(h.lastConfirmed).toBe(lost);
    expect(h.engine.inFlightEvents).toBe(3);
    sink.leaders = 'ok';
    await h.idle();
    expect(sink.written).toEqual(['waiting.0', 'waiting.1', 'after.0']);
    expect(h.lastConfirmed).toBe(end);
    expect(h.recovered).toBe(1);
  });

  it('events held when the session ends are dropped unconfirmed, and the next session streams them again', async () => {
    const sink = new FakeSink().scriptSends(kafkaDown());
    sink.leaders = kafkaDown();
    const h = new EngineHarness({ guarantee: 'at-most-once', sink });
    const lost = h.transaction('lost', 2);
    h.transaction('held', 2);
    await vi.waitFor(() => expect(h.dropped).toEqual([2]), { timeout: 10_000 });
    // A stop (or a lost connection) ends the session: the drain does not wait for Kafka, nor hand off into the outage.
    h.engine.endSession(h.tracker);
    await h.idle();
    expect(sink.written).toEqual([]);
    expect(h.lastConfirmed).toBe(lost);
    expect(h.engine.inFlightEvents).toBe(0);
    sink.leaders = 'ok';
    h.newSession();
    const end = h.transaction('held', 2);
    await h.idle();
    expect(sink.written).toEqual(['held.0', 'held.1']);
    expect(h.lastConfirmed).toBe(end);
    expect(h.recovered).toBe(1);
  });

  it('in an outage that dropped a batch, each hand-off holds one source transaction until Kafka acknowledges one', async () => {
    // Each of them is confirmed first, so a hand-off that finds Kafka still down loses what it holds.
    const sink = new FakeSink().scriptSends(kafkaDown(), kafkaDown());
    const h = new EngineHarness({ guarantee: 'at-most-once', sink });
    h.transaction('lost', 2);
    for (const name of ['p', 'q', 'x']) h.transaction(name, 1);
    const end = h.transaction('y', 1);
    await h.idle();
    expect(sink.calls.map((c) => c.ids)).toEqual([['lost.0', 'lost.1'], ['p.0'], ['q.0'], ['x.0', 'y.0']]);
    expect(h.dropped).toEqual([2, 1]);
    expect(h.lastConfirmed).toBe(end);
    expect(h.recovered).toBe(1);
  });

  it('a batch Kafka refused for its records is dropped without holding what follows: it says nothing of the brokers', async () => {
    const sink = new FakeSink().scriptSends(new RelayError('RECORD_TOO_LARGE', 'the record is too large (fake)'));
    const h = new EngineHarness({ guarantee: 'at-most-once', sink });
    h.transaction('big', 2);
    const end = h.transaction('next', 1);
    await h.idle();
    expect(sink.calls.map((c) => c.ids)).toEqual([['big.0', 'big.1'], ['next.0']]);
    expect(h.dropped).toEqual([2]);
    expect(h.retrying).toEqual([]);
    expect(h.lastConfirmed).toBe(end);
  });

  it('partitions that have a leader and refuse every request (min.insync.replicas not met): each later hand-off waits a backoff of the outage first', async () => {
    const sink = new FakeSink().scriptSends(kafkaDown(), kafkaDown(), kafkaDown());
    const h = new EngineHarness({ guarantee: 'at-most-once', sink });
    for (const name of ['a', 'b', 'c']) h.transaction(name, 2);
    const end = h.transaction('d', 2);
    await h.idle();
    expect(h.dropped).toEqual([2, 2, 2]);
    // One backoff after each dropped batch, before the leader check that lets the next one go.
    expect(h.retrying).toHaveLength(3);
    expect(sink.written).toEqual(['d.0', 'd.1']);
    expect(h.lastConfirmed).toBe(end);
    expect(h.recovered).toBe(1);
  });

  it('a topic Kafka says does not exist: its events meet the poison policy before their transaction is handed off, after the record retries, and a halt confirms nothing of it', async () => {
    // Before: the hand-off confirmed the batch, the sink refused it for the topic, and it was dropped whole,
    // the good neighbours with it, past the policy.
    const sink = new FakeSink();
    sink.topicAnswers.set('missing', missingTopic('missing'));
    const h = new EngineHarness({ guarantee: 'at-most-once', sink });
    const before = h.transaction('a', 1);
    const { txn } = h.begin('t', 1);
    h.push(txn, 'lost?', undefined, 'missing');
    h.commit(txn);
    await h.idle();
    expect(h.stopped.map((e) => [e.code, e.details.eventId, e.details.attempts])).toEqual([['TOPIC_NOT_FOUND', 'lost?', 2]]);
    // FAST_RETRY: 2 attempts, so one retry before the policy.
    expect(h.recordRetries).toEqual(['lost? then poison policy']);
    expect(sink.topicChecks).toEqual([['t'], ['missing'], ['missing']]);
    expect(sink.written).toEqual(['a.0']);
    expect(h.dropped).toEqual([]);
    expect(h.confirmed).toEqual([before]);
  });

  it('a topic Kafka says does not exist, skipped by the policy: its good neighbours go, in order, and the transaction is confirmed', async () => {
    const sink = new FakeSink();
    sink.topicAnswers.set('missing', missingTopic('missing'));
    const skipped: string[] = [];
    const h = new EngineHarness({
      guarantee: 'at-most-once',
      sink,
      poison: async (event, error) => {
        skipped.push(`${event.eventId} ${error.code}`);
        return 'skip';
      },
    });
    const { txn } = h.begin('t', 1);
    h.push(txn, 'x.0', undefined, 'missing');
    h.push(txn, 't.after');
    h.push(txn, 'x.1', undefined, 'missing');
    const end = h.commit(txn);
    await h.idle();
    expect(skipped).toEqual(['x.0 TOPIC_NOT_FOUND', 'x.1 TOPIC_NOT_FOUND']);
    expect(sink.written).toEqual(['t.0', 't.after']);
    expect(h.dropped).toEqual([]);
    expect(h.confirmed).toEqual([end]);
    expect(h.engine.inFlightEvents).toBe(0);
  });

  it('while Kafka cannot say whether a new topic exists, nothing for it is handed off or confirmed; once it answers, it goes, and the topic is not asked about again', async () => {
    const sink = new FakeSink();
    sink.topicAnswers.set('new', kafkaDown());
    const h = new EngineHarness({ guarantee: 'at-most-once', sink });
    const before = h.transaction('a', 1);
    const { txn } = h.begin('n', 0);
    h.push(txn, 'n.0', undefined, 'new');
    h.commit(txn);
    await sleep(20);
    expect(sink.written).toEqual(['a.0']);
    expect(h.confirmed).toEqual([before]);
    expect(h.retrying.length).toBeGreaterThan(0);
    expect(h.engine.inFlightEvents).toBe(1);
    sink.topicAnswers.delete('new');
    const later = h.begin('m', 0).txn;
    h.push(later, 'm.0', undefined, 'new');
    const end = h.commit(later);
    await h.idle();
    expect(sink.written).toEqual(['a.0', 'n.0', 'm.0']);
    expect(h.lastConfirmed).toBe(end);
    expect(h.dropped).toEqual([]);
    expect(h.recovered).toBe(1);
    expect(sink.topicChecks.filter(([topic]) => topic === 'new').length).toBe(h.retrying.length + 1);
  });

  it('a session that ends while Kafka cannot say whether a topic exists leaves its events unconfirmed to the next session', async () => {
    const sink = new FakeSink();
    sink.topicAnswers.set('new', kafkaDown());
    const h = new EngineHarness({ guarantee: 'at-most-once', sink });
    const { txn } = h.begin('n', 0);
    h.push(txn, 'n.0', undefined, 'new');
    h.commit(txn);
    await sleep(10);
    h.engine.endSession(h.tracker);
    await h.idle();
    expect(sink.written).toEqual([]);
    expect(h.confirmed).toEqual([]);
    expect(h.engine.inFlightEvents).toBe(0);
    sink.topicAnswers.delete('new');
    h.newSession();
    const again = h.begin('n', 0).txn;
    h.push(again, 'n.0', undefined, 'new');
    const end = h.commit(again);
    await h.idle();
    expect(sink.written).toEqual(['n.0']);
    expect(h.lastConfirmed).toBe(end);
  });

  it('a session that ends while Kafka is asked about the topic of a transaction larger than the window: its tail is dropped, and the refusal that answers then finds nothing to decide', async () => {
    // Before: the answer looked for the transaction's first event where the session's end had emptied the queue,
    // and delivery stopped with INTERNAL (a TypeError).
    const sink = new FakeSink();
    sink.topicAnswers.set('missing', missingTopic('missing'));
    sink.topicGate = deferred();
    const h = new EngineHarness({ guarantee: 'at-most-once', sink, limits: { maxInFlightEvents: 4 } });
    const { txn } = h.begin('big', 0);
    for (let i = 0; i < 4; i++) h.push(txn, `big.${i}`, undefined, 'missing');
    await settle();
    expect(sink.topicChecks).toEqual([['missing']]);
    h.engine.endSession(h.tracker);
    sink.topicGate.resolve();
    await h.idle();
    expect(h.stopped).toEqual([]);
    expect(sink.calls).toEqual([]);
    expect(h.engine.inFlightEvents).toBe(0);
  });

  /** Topic `gone` delivered to once (a.0), then deleted: Kafka refuses the next batch for it, and says so when asked. */
  async function deletedAfterFirstHandOff(limits?: { batchMaxBytes: number }): Promise<{ sink: FakeSink; h: EngineHarness }> {
    const sink = new FakeSink();
    const h = new EngineHarness({ guarantee: 'at-most-once', sink, limits });
    const first = h.begin('a', 0).txn;
    h.push(first, 'a.0', undefined, 'gone');
    h.commit(first);
    await h.idle();
    expect(sink.written).toEqual(['a.0']);
    sink.topicAnswers.set('gone', missingTopic('gone'));
    return { sink, h };
  }

  it('a topic deleted after its first hand-off: the batch Kafka refused for it is dropped, and the next event for it meets the poison policy before its hand-off', async () => {
    const { h } = await deletedAfterFirstHandOff();
    const second = h.begin('b', 0).txn;
    h.push(second, 'b.0', undefined, 'gone');
    const dropped = h.commit(second);
    await h.idle();
    expect(h.dropped).toEqual([1]);
    // Before: known for good, the topic was not asked about again, and each later batch for it was dropped too.
    const third = h.begin('c', 0).txn;
    h.push(third, 'c.0', undefined, 'gone');
    h.commit(third);
    await h.idle();
    expect(h.dropped).toEqual([1]);
    expect(h.stopped.map((e) => [e.code, e.details.eventId])).toEqual([['TOPIC_NOT_FOUND', 'c.0']]);
    expect(h.lastConfirmed).toBe(dropped);
  });

  it('a topic deleted after its first hand-off, with the next transaction for it already queued behind the batch Kafka refuses: that transaction is asked about again before its hand-off, and meets the poison policy instead of being confirmed and dropped', async () => {
    // A batch of 15 bytes holds one 10-byte event: building b's batch looked one event past it and found c's topic
    // known (before Kafka refused b for it), and c was handed off on that answer after the sink had forgotten it.
    const { sink, h } = await deletedAfterFirstHandOff({ batchMaxBytes: 15 });
    const second = h.begin('b', 0).txn;
    h.push(second, 'b.0', undefined, 'gone');
    const dropped = h.commit(second);
    const third = h.begin('c', 0).txn;
    h.push(third, 'c.0', undefined, 'gone');
    h.commit(third);
    await h.idle();
    expect(sink.calls.map((c) => c.ids)).toEqual([['a.0'], ['b.0']]);
    expect(h.dropped).toEqual([1]);
    expect(h.stopped.map((e) => [e.code, e.details.eventId])).toEqual([['TOPIC_NOT_FOUND', 'c.0']]);
    expect(h.lastConfirmed).toBe(dropped);
  });
  it('a topic deleted under a transaction larger than a batch, counted whole at its first batch: the rest of it goes (dropped, not halted on: its position reached PostgreSQL)', async () => {
    const { sink, h } = await deletedAfterFirstHandOff({ batchMaxBytes: 15 });
    const second = h.begin('b', 0).txn;
    h.push(second, 'b.0', undefined, 'gone');
    h.push(second, 'b.1', undefined, 'gone');
    const end = h.commit(second);
    await h.idle();
    // Asked again, b.1 would meet the poison policy: a halt "before" an event whose position was confirmed.
    expect(sink.calls.map((c) => c.ids)).toEqual([['a.0'], ['b.0'], ['b.1']]);
    expect(sink.topicChecks).toEqual([['gone']]);
    expect(h.stopped).toEqual([]);
    expect(h.dropped).toEqual([1, 1]);
    expect(h.lastConfirmed).toBe(end);
  });
});
