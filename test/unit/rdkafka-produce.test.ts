import type { DeliveryReport, LibrdKafkaError, MessageHeader } from '@confluentinc/kafka-javascript';
import { describe, expect, it } from 'vitest';
import type { RelayError } from '../../src/errors.js';
import { ProduceCalls, rdkafkaHeaders, type NativeProducer, type ProduceCall } from '../../src/sink/rdkafka-produce.js';
import type { SinkRecord } from '../../src/sink/sink.js';
import { decodeHeaders } from '../support/encoded-headers.js';

interface Produced {
  topic: string;
  key: Buffer | null;
  timestamp: number | null;
  opaque: ProduceCall;
  headers: MessageHeader[] | Buffer;
}

/** librdkafka's native producer as produce-and-wait sees it: records what was produced; throws `refuse` at the given call. */
class FakeProducer implements NativeProducer {
  readonly produced: Produced[] = [];
  refuseAt: { index: number; error: unknown } | undefined;

  /** Lean reports asked for (by the patched addon's method). */
  lean = false;

  /** An addon's encoded-headers format version, or none: the unpatched binding. */
  constructor(encodedHeadersVersion?: number) {
    if (encodedHeadersVersion !== undefined) this._client = { outboxEncodedHeaders: () => encodedHeadersVersion, outboxLeanReports: () => (this.lean = true), outboxBatchedReports: () => true };
  }

  readonly _client?: { outboxEncodedHeaders: () => number; outboxLeanReports: () => boolean; outboxBatchedReports: () => boolean };

  produce(topic: string, _partition: null, _value: Buffer | null, key: Buffer | null, timestamp: number | null, opaque: ProduceCall, headers: MessageHeader[] | Buffer): unknown {
    if (this.refuseAt?.index === this.produced.length) throw this.refuseAt.error;
    // A copy, as the binding makes one into librdkafka's message: the list, its objects and the encoded buffer are reused for the next record.
    this.produced.push({ topic, key, timestamp, opaque, headers: Buffer.isBuffer(headers) ? Buffer.from(headers) : headers.map((h) => ({ ...h })) });
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

describe('librdkafka produce-and-wait (native producer)', () => {
  it('hands every record to the producer at once, with one opaque for the call, and resolves on the last report', async () => {
    const p = new FakeProducer();
    const calls = new ProduceCalls(p);
    const outcome = watch(calls.produce([record(0), record(1, { timestampMs: 1_700_000_000_000 }), record(2)]));
    expect(p.produced.map((r) => r.key!.toString())).toEqual(['k0', 'k1', 'k2']);
    expect(new Set(p.produced.map((r) => r.opaque)).size).toBe(1);
    expect(p.produced.map((r) => r.timestamp)).toEqual([null, 1_700_000_000_000, null]);
    expect(p.produced[0]!.headers).toEqual([{ id: 'e0' }, { 'outbox-lsn': '0/10' }]);
    report(calls, p, 0);
    report(calls, p, 2);
    expect(await outcome()).toBe('pending');
    report(calls, p, 1);
    expect(await outcome()).toBe('resolved');
  });

  it('rejects a call with a failed record only after every record of it reported, as a record error', async () => {
    const p = new FakeProducer();
    const calls = new ProduceCalls(p);
    const outcome = watch(calls.produce(records(4)));
    report(calls, p, 1, rdError(10, 'Broker: Message size too large'));
    report(calls, p, 0);
    report(calls, p, 2);
    // Settling now would let the engine's re-send overtake record 3, still queued.
    expect(await outcome()).toBe('pending');
    report(calls, p, 3);
    expect(await rejected(outcome)).toMatchObject({ code: 'RECORD_TOO_LARGE', retriable: false });
  });

  it('reports the record error when a transient error came first (the engine isolates the record instead of re-sending forever)', async () => {
    const p = new FakeProducer();
    const calls = new ProduceCalls(p);
    const outcome = watch(calls.produce(records(3)));
    report(calls, p, 0, rdError(-192, 'Local: Message timed out'));
    report(calls, p, 1, rdError(10));
    report(calls, p, 2, rdError(-192));
    expect((await rejected(outcome)).code).toBe('RECORD_TOO_LARGE');
  });

  it('stops at a synchronous produce() refusal and rejects with it, classified, once the records before it reported', async () => {
    const p = new FakeProducer();
    p.refuseAt = { index: 2, error: rdError(-184, 'Local: Queue full') };
    const calls = new ProduceCalls(p);
    const outcome = watch(calls.produce(records(5)));
    expect(p.produced).toHaveLength(2);
    report(calls, p, 0);
    expect(await outcome()).toBe('pending');
    report(calls, p, 1);
    expect(await rejected(outcome)).toMatchObject({ code: 'KAFKA_UNAVAILABLE', retriable: true, message: expect.stringContaining('Queue full') });
  });

  it('rejects at once when the first record is refused (nothing is waiting for a report)', async () => {
    const p = new FakeProducer();
    p.refuseAt = { index: 0, error: rdError(-188, 'Local: Unknown topic') };
    const outcome = watch(new ProduceCalls(p).produce(records(2)));
    expect((await rejected(outcome)).code).toBe('TOPIC_NOT_FOUND');
  });

  it("takes the patched addon's batches of successful reports (opaques only) next to single reports with an error, across calls", async () => {
    const p = new FakeProducer(1);
    const calls = new ProduceCalls(p);
    expect(calls.batchedReports).toBe(true);
    const first = watch(calls.produce(records(3)));
    const second = watch(calls.produce(records(2)));
    const opaque = (i: number) => p.produced[i]!.opaque;
    // One flush: records 0 and 1 of the first call and the first of the second; record 2 failed and came alone.
    calls.report(null, { outboxOpaques: [opaque(0), opaque(1), opaque(3)] });
    expect([await first(), await second()]).toEqual(['pending', 'pending']);
    report(calls, p, 2, rdError(10, 'Broker: Message size too large'));
    calls.report(null, { outboxOpaques: [opaque(4)] });
    expect(await rejected(first)).toMatchObject({ code: 'RECORD_TOO_LARGE' });
    expect(await second()).toBe('resolved');
  });

  it('fails the calls still waiting when the producer is closed (their reports can no longer come), retriable', async () => {
    const p = new FakeProducer();
    const calls = new ProduceCalls(p);
    const first = watch(calls.produce(records(2)));
    const second = watch(calls.produce(records(1)));
    report(calls, p, 0);
    report(calls, p, 1);
    calls.failOpen();
    expect(await first()).toBe('resolved');
    expect(await rejected(second)).toMatchObject({ code: 'KAFKA_UNAVAILABLE', retriable: true });
  });

  it('passes the headers as one encoded Buffer only to an addon that reads this format version, else as the array; asks a patched addon for lean reports', () => {
    const encoded = new FakeProducer(1);
    const calls = new ProduceCalls(encoded);
    expect(calls.encodedHeaders).toBe(true);
    expect([calls.leanReports, encoded.lean]).toEqual([true, true]);
    void calls.produce([record(0), record(1)]);
    expect(encoded.produced.map((r) => decodeHeaders(r.headers as Buffer))).toEqual([
      [['id', Buffer.from('e0')], ['outbox-lsn', Buffer.from('0/10')]],
      [['id', Buffer.from('e1')], ['outbox-lsn', Buffer.from('0/10')]],
    ]);
    for (const other of [new FakeProducer(), new FakeProducer(2)]) {
      const arrayCalls = new ProduceCalls(other);
      expect(arrayCalls.encodedHeaders).toBe(false);
      expect(arrayCalls.leanReports).toBe(other._client !== undefined);
      void arrayCalls.produce([record(0)]);
      expect(other.produced[0]!.headers).toEqual([{ id: 'e0' }, { 'outbox-lsn': '0/10' }]);
    }
  });

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
});
