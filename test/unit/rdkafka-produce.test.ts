import type { DeliveryReport, LibrdKafkaError, MessageHeader } from '@confluentinc/kafka-javascript';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RelayError } from '../../src/errors.js';
import { PARKED_MAX_MS, ProduceCalls, rdkafkaHeaders, type NativeProducer, type PatchedAddon } from '../../src/sink/rdkafka-produce.js';
import { producerRefusal } from '../../src/sink/rdkafka-errors.js';
import type { SinkRecord } from '../../src/sink/sink.js';
import { decodeHeaderSets } from '../support/encoded-headers.js';

interface Produced {
  topic: string;
  key: string | Buffer | null;
  timestamp: number | null;
  /** The call's id, with either addon. */
  opaque: number;
  headers: MessageHeader[] | [string, Buffer][];
}

/**
 * librdkafka's native producer as produce-and-wait sees it: records what was produced; refuses the record at
 * `refuseAt.index` (produce() throws; the patched addon's batch produce returns the code). `patched`: the addon
 * that scripts/patch-kafka-client.mjs builds (batch produce, lean reports in batches).
 */
class FakeProducer implements NativeProducer {
  readonly produced: Produced[] = [];
  readonly batches: { topic: string; count: number; timestamps: (number | null)[] | undefined }[] = [];
  refuseAt: { index: number; error: LibrdKafkaError } | undefined;
  /** Lean reports asked for (by the patched addon's method). */
  lean = false;
  readonly _client?: Pick<PatchedAddon, 'outboxLeanReports' | 'outboxProduceBatch'>;

  constructor(patched = true) {
    if (!patched) return;
    this._client = {
      outboxLeanReports: () => (this.lean = true),
      outboxProduceBatch: (topic, values, keys, headers, timestamps, id) => {
        const sets = decodeHeaderSets(Buffer.from(headers));
        this.batches.push({ topic, count: values.length, timestamps: timestamps && [...timestamps] });
        for (let i = 0; i < values.length; i++) {
          if (this.refuseAt?.index === this.produced.length) return [i, this.refuseAt.error.code];
          this.produced.push({ topic, key: keys[i]!, timestamp: timestamps?.[i] ?? null, opaque: id, headers: sets[i]! });
        }
        return [values.length, 0];
      },
    };
  }

  produce(topic: string, _partition: null, _value: Buffer | null, key: string | Buffer | null, timestamp: number | null, opaque: number, headers: MessageHeader[]): unknown {
    if (this.refuseAt?.index === this.produced.length) throw this.refuseAt.error;
    // A copy, as the binding makes one into librdkafka's message: the list and its objects are reused for the next record.
    this.produced.push({ topic, key, timestamp, opaque, headers: headers.map((h) => ({ ...h })) });
    return true;
  }
}

const rdError = (code: number, message = `librdkafka error ${code}`) => Object.assign(new Error(message), { code }) as unknown as LibrdKafkaError;
const record = (i: number, extra: Partial<SinkRecord> = {}): SinkRecord => ({ topic: 'orders', key: Buffer.from(`k${i}`), value: Buffer.from(`{"i":${i}}`), headers: { id: `e${i}`, 'outbox-lsn': '0/10' }, ...extra });
const records = (n: number) => Array.from({ length: n }, (_, i) => record(i));

/** Sends the delivery report of produced record `i` (error or success), as the producer's event would. */
function report(calls: ProduceCalls, p: FakeProducer, i: number, err?: LibrdKafkaError): void {
  const r = p.produced[i]!;
  calls.report(err ?? null, { topic: r.topic, partition: 0, offset: i, size: 10, opaque: r.opaque } as DeliveryReport);
}

/** The outcome once the event loop had a turn: 'pending' until the promise settled. */
function watch(promise: Promise<void>): () => Promise<'pending' | 'resolved' | RelayError> {
  let outcome: 'pending' | 'resolved' | RelayError = 'pending';
  promise.then(
    () => (outcome = 'resolved'),
    (err: RelayError) => (outcome = err),
  );
  return () => new Promise((resolve) => setImmediate(() => resolve(outcome)));
}

/** The rejection, once the event loop had a turn. */
const rejected = async (outcome: ReturnType<typeof watch>) => (await outcome()) as RelayError;

const callsOf = (p: FakeProducer) => new ProduceCalls(p, producerRefusal({ ERR__QUEUE_FULL: -184, ERR__UNKNOWN_TOPIC: -188 }));
/** The error a refused record gives: produce() throws it; the batch produce returns its code. */
const refusedWith = (code: number) => rdError(code, code === -184 ? 'Local: Queue full' : 'Local: Unknown topic');

describe.each([
  ['the patched addon (batch produce)', true],
  ['an unpatched addon (produce() per record)', false],
])('librdkafka produce-and-wait, %s', (_name, patched) => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('hands every record to the producer at once, with one opaque for the call, and resolves on the last report', async () => {
    const p = new FakeProducer(patched);
    const calls = callsOf(p);
    expect(calls.patched).toBe(patched);
    const outcome = watch(calls.produce([record(0), record(1, { timestampMs: 1_700_000_000_000 }), record(2)]).delivered);
    expect(p.produced.map((r) => r.key!.toString())).toEqual(['k0', 'k1', 'k2']);
    expect(new Set(p.produced.map((r) => r.opaque)).size).toBe(1);
    expect(p.produced.map((r) => r.timestamp)).toEqual([null, 1_700_000_000_000, null]);
    expect(p.produced[0]!.headers).toEqual(patched ? [['id', Buffer.from('e0')], ['outbox-lsn', Buffer.from('0/10')]] : [{ id: 'e0' }, { 'outbox-lsn': '0/10' }]);
    report(calls, p, 0);
    report(calls, p, 2);
    expect(await outcome()).toBe('pending');
    report(calls, p, 1);
    expect(await outcome()).toBe('resolved');
  });

  it('rejects a call with a failed record only after every record of it reported, as a record error', async () => {
    const p = new FakeProducer(patched);
    const calls = callsOf(p);
    const call = calls.produce(records(4));
    expect(call.handedOver).toBe(true);
    const outcome = watch(call.delivered);
    report(calls, p, 1, rdError(10, 'Broker: Message size too large'));
    report(calls, p, 0);
    report(calls, p, 2);
    // Settling now would let the engine's re-send overtake record 3, still queued.
    expect(await outcome()).toBe('pending');
    report(calls, p, 3);
    expect(await rejected(outcome)).toMatchObject({ code: 'RECORD_TOO_LARGE', retriable: false });
  });

  it('reports the record error when a transient error came first (the engine isolates the record instead of re-sending forever)', async () => {
    const p = new FakeProducer(patched);
    const calls = callsOf(p);
    const outcome = watch(calls.produce(records(3)).delivered);
    report(calls, p, 0, rdError(-192, 'Local: Message timed out'));
    report(calls, p, 1, rdError(10));
    report(calls, p, 2, rdError(-192));
    expect((await rejected(outcome)).code).toBe('RECORD_TOO_LARGE');
  });

  it('stops at a synchronous refusal and rejects with it, classified, once the records before it reported', async () => {
    const p = new FakeProducer(patched);
    p.refuseAt = { index: 2, error: refusedWith(-184) };
    const calls = callsOf(p);
    const call = calls.produce(records(5));
    const outcome = watch(call.delivered);
    expect(p.produced).toHaveLength(2);
    // Known at once, so that the sink hands no later call's records over before this one's failure is reported.
    expect(call.handedOver).toBe(false);
    report(calls, p, 0);
    expect(await outcome()).toBe('pending');
    report(calls, p, 1);
    expect(await rejected(outcome)).toMatchObject({ code: 'KAFKA_UNAVAILABLE', retriable: true, message: expect.stringMatching(patched ? /ERR__QUEUE_FULL \(-184\)/ : /Queue full/) });
  });

  it('rejects at once when the first record is refused (nothing is waiting for a report)', async () => {
    const p = new FakeProducer(patched);
    p.refuseAt = { index: 0, error: refusedWith(-188) };
    const outcome = watch(callsOf(p).produce(records(2)).delivered);
    expect((await rejected(outcome)).code).toBe('TOPIC_NOT_FOUND');
  });

  it('fails the calls still waiting when the producer is closed (their reports can no longer come), retriable; a late report of theirs is ignored', async () => {
    const p = new FakeProducer(patched);
    const calls = callsOf(p);
    const first = watch(calls.produce(records(2)).delivered);
    const second = watch(calls.produce(records(1)).delivered);
    report(calls, p, 0);
    report(calls, p, 1);
    calls.failOpen();
    expect(await first()).toBe('resolved');
    expect(await rejected(second)).toMatchObject({ code: 'KAFKA_UNAVAILABLE', retriable: true });
    // Its call is gone: the report finds nothing to settle, and does not throw on the client's event path.
    expect(() => report(calls, p, 2)).not.toThrow();
    expect(await rejected(second)).toMatchObject({ code: 'KAFKA_UNAVAILABLE' });
  });

  it('a call that failed only because its producer did (purged, fatal) settles after the earlier calls still waiting: the refused record is reported first', async () => {
    const p = new FakeProducer(patched);
    const calls = callsOf(p);
    const order: string[] = [];
    const track = (name: string, promise: Promise<void>) => promise.catch((err: RelayError) => order.push(`${name} ${err.code}`));
    const refused = track('refused', calls.produce([record(0, { value: Buffer.alloc(10_000) })]).delivered);
    const purged = track('purged', calls.produce(records(2)).delivered);
    // Produced after the producer turned fatal: refused at hand-over, nothing of it produced.
    p.refuseAt = { index: 3, error: rdError(-150, 'Local: Fatal error') };
    const lateCall = calls.produce(records(1));
    expect(lateCall.handedOver).toBe(false);
    const late = track('late', lateCall.delivered);
    // librdkafka purged the queued records before the refused request's report came.
    report(calls, p, 1, rdError(-152, 'Local: Purged in queue'));
    report(calls, p, 2, rdError(-152, 'Local: Purged in queue'));
    await new Promise((resolve) => setImmediate(resolve));
    // Before: "purged" and "late" failed here, and the sink replaced the producer, failing "refused" as collateral (KAFKA_UNAVAILABLE).
    expect(order).toEqual([]);
    report(calls, p, 0, rdError(10, 'Broker: Message size too large'));
    await Promise.all([refused, purged, late]);
    expect(order).toEqual(['refused RECORD_TOO_LARGE', 'purged KAFKA_UNAVAILABLE', 'late KAFKA_UNAVAILABLE']);
  });

  it(`a call held behind an earlier one settles after ${PARKED_MAX_MS} ms if the earlier one never reports, and at once when the producer is closed`, async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const p = new FakeProducer(patched);
    const calls = callsOf(p);
    const silent = watch(calls.produce(records(1)).delivered);
    const purged = watch(calls.produce(records(1)).delivered);
    report(calls, p, 1, rdError(-152, 'Local: Purged in queue'));
    vi.advanceTimersByTime(PARKED_MAX_MS - 1);
    expect(await purged()).toBe('pending');
    vi.advanceTimersByTime(1);
    expect(await rejected(purged)).toMatchObject({ code: 'KAFKA_UNAVAILABLE' });
    expect(await silent()).toBe('pending');
    const again = watch(calls.produce(records(1)).delivered);
    report(calls, p, 2, rdError(-150, 'Local: Fatal error'));
    calls.failOpen();
    // The silent call fails as collateral, the held one with its own error.
    expect(await rejected(silent)).toMatchObject({ code: 'KAFKA_UNAVAILABLE', message: expect.stringMatching(/closed before/) });
    expect(await rejected(again)).toMatchObject({ code: 'KAFKA_UNAVAILABLE', message: expect.stringMatching(/Fatal/) });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('librdkafka produce-and-wait, the patched addon', () => {
  it("asks for lean reports and takes its batches of successful reports (ids only) next to single reports with an error, across calls", async () => {
    const p = new FakeProducer();
    const calls = callsOf(p);
    expect([calls.patched, p.lean]).toEqual([true, true]);
    const first = watch(calls.produce(records(3)).delivered);
    const second = watch(calls.produce(records(2)).delivered);
    const opaque = (i: number) => p.produced[i]!.opaque;
    expect([opaque(0), opaque(3)]).toEqual([expect.any(Number), opaque(0) + 1]);
    // One flush: records 0 and 1 of the first call and the first of the second; record 2 failed and came alone.
    calls.report(null, { outboxOpaques: [opaque(0), opaque(1), opaque(3)] });
    expect([await first(), await second()]).toEqual(['pending', 'pending']);
    report(calls, p, 2, rdError(10, 'Broker: Message size too large'));
    calls.report(null, { outboxOpaques: [opaque(4)] });
    expect(await rejected(first)).toMatchObject({ code: 'RECORD_TOO_LARGE' });
    expect(await second()).toBe('resolved');
  });

  it('makes one native call per run of records to the same topic, in order, with timestamps only where a record has one', async () => {
    const p = new FakeProducer();
    const calls = callsOf(p);
    const outcome = watch(calls.produce([record(0), record(1, { topic: 'payments', timestampMs: 5 }), record(2, { topic: 'payments' }), record(3)]).delivered);
    expect(p.batches).toEqual([
      { topic: 'orders', count: 1, timestamps: undefined },
      { topic: 'payments', count: 2, timestamps: [5, null] },
      { topic: 'orders', count: 1, timestamps: undefined },
    ]);
    expect(p.produced.map((r) => [r.topic, r.key!.toString()])).toEqual([['orders', 'k0'], ['payments', 'k1'], ['payments', 'k2'], ['orders', 'k3']]);
    for (let i = 0; i < 4; i++) report(calls, p, i);
    expect(await outcome()).toBe('resolved');
  });

  it('stops at a refusal in a later run: the runs after it are not produced', async () => {
    const p = new FakeProducer();
    p.refuseAt = { index: 1, error: refusedWith(-184) };
    const calls = callsOf(p);
    const outcome = watch(calls.produce([record(0), record(1, { topic: 'payments' }), record(2)]).delivered);
    expect(p.batches.map((b) => b.topic)).toEqual(['orders', 'payments']);
    report(calls, p, 0);
    expect((await rejected(outcome)).code).toBe('KAFKA_UNAVAILABLE');
  });
});

describe('librdkafka header list (an unpatched addon)', () => {
  it('builds librdkafka header entries from the record headers, Buffers kept as they are, reusing one list and one object per name', () => {
    const raw = Buffer.from([0, 1, 2]);
    const first = rdkafkaHeaders({ id: 'e1', raw, 'content-type': 'application/json' });
    expect(first).toEqual([{ id: 'e1' }, { raw }, { 'content-type': 'application/json' }]);
    const idHeader = first[0];
    const second = rdkafkaHeaders({ id: 'e2', type: 'T' });
    expect(second).toBe(first);
    expect(second).toEqual([{ id: 'e2' }, { type: 'T' }]);
    expect(second[0]).toBe(idHeader);
    expect(rdkafkaHeaders({ raw })[0]!.raw).toBe(raw);
  });

  it('keeps a "__proto__" header (the row mapper keeps one) as an own property of its entry, string or Buffer', () => {
    const raw = Buffer.from([0, 1, 2]);
    // As the mapper hands it over: an own "__proto__" key, not a prototype.
    const withProto = (value: string | Buffer) => ({ ...Object.defineProperty({}, '__proto__', { value, enumerable: true }), id: 'e1' }) as Record<string, string | Buffer>;
    expect(rdkafkaHeaders(withProto('x')).map((header) => Object.entries(header))).toEqual([[['__proto__', 'x']], [['id', 'e1']]]);
    expect(rdkafkaHeaders(withProto(raw)).map((header) => Object.entries(header))).toEqual([[['__proto__', raw]], [['id', 'e1']]]);
  });
});
