import type { DeliveryReport, LibrdKafkaError, MessageHeader } from '@confluentinc/kafka-javascript';
import type { RelayError } from '../errors.js';
import { HeaderSets } from './encoded-headers.js';
import { collateralFailure } from './kafka-errors.js';
import { classifyRdKafkaError, failedWithoutCause, isRecordErrorCode } from './rdkafka-errors.js';
import type { SinkRecord } from './sink.js';

/** What produce-and-wait needs of librdkafka's native producer (`Producer.produce`); tests pass a fake. */
export interface NativeProducer {
  produce(topic: string, partition: null, value: Buffer | null, key: string | Buffer | null, timestamp: number | null, opaque: number, headers: MessageHeader[]): unknown;
  /** The addon (the binding's `_client`): it has these methods when scripts/patch-kafka-client.mjs rebuilt it. */
  readonly _client?: Partial<PatchedAddon>;
}

/** The methods scripts/patch-kafka-client.mjs adds to the addon's producer. */
export interface PatchedAddon {
  /** Reports carry only the error and the opaque; the successful ones of a flush come as one batch. Before connect. */
  outboxLeanReports(): boolean;
  /**
   * Produces `values[i]` with `keys[i]`, the i-th encoded header set of `headers` (HeaderSets) and `timestamps[i]`,
   * in order, each with `id` as its opaque; stops at the first record librdkafka refuses. Returns the number of
   * records produced and the refusal's error code (0 when none).
   */
  outboxProduceBatch(topic: string, values: (Buffer | null)[], keys: (string | Buffer | null)[], headers: Buffer, timestamps: (number | null)[] | undefined, id: number): [number, number];
  /** After connect, instead of setPollInBackground(true): the event loop serves the reports, woken by librdkafka's broker thread. */
  outboxPollOnLoop(): boolean;
}

/** The successful delivery reports of one flush, as the patched addon batches them: each record's opaque. */
export interface BatchedReports {
  outboxOpaques: (number | undefined)[];
}

/** One send(): counts the delivery reports still due. */
export interface ProduceCall {
  /** The call's number: the opaque of each of its records, by which reports find it. */
  id: number;
  /** Its place among the calls (never wraps, unlike `id`). */
  seq: number;
  due: number;
  error: unknown;
  resolve(): void;
  reject(error: RelayError): void;
}

/** Call ids stay small integers, which the patched addon carries in the opaque pointer and gives back as numbers. */
const ID_MASK = 0x3fffffff;

/**
 * How long a call that failed only because its producer did waits for the earlier calls' reports (see finish()).
 * They come within milliseconds of the failure that made the producer fatal; the bound is for one that never comes.
 */
export const PARKED_MAX_MS = 1000;

/**
 * Produce-and-wait on the native producer: one counter object per call instead of one promise per record.
 * `produce` hands every record to librdkafka synchronously (so calls enqueue in call order, which the idempotent
 * producer keeps per partition) and settles only when each produced record has its delivery report, even when one
 * failed early: an engine that re-sends on the first error would otherwise race records still queued. A
 * synchronous refusal (queue full, unknown partition, a fatal producer) stops the call there; it rejects with that
 * error once the records before it have reported. With the patched addon a call is one native call per run of
 * records to the same topic, else one `produce()` per record; either way the call's id is every record's opaque.
 */
export class ProduceCalls {
  /** Calls with reports still due, by id: reports find them, and closing the producer fails them instead of leaving them hanging. */
  private readonly open = new Map<number, ProduceCall>();
  /** Calls whose failure says only that their producer failed, held back behind earlier calls still open (finish()), by seq. */
  private parked: ProduceCall[] = [];
  private parkedTimer: NodeJS.Timeout | undefined;
  private nextId = 0;
  private nextSeq = 0;
  /** The patched addon: batches of records per native call, lean delivery reports in batches. */
  private readonly addon: PatchedAddon | undefined;
  private readonly headerSets = new HeaderSets();

  /**
   * Takes a producer not yet connected: lean reports are switched on before its first report. `refusal` makes the
   * error of a code the batch produce returned (librdkafka's own error type in the sink).
   */
  constructor(
    private readonly producer: NativeProducer,
    private readonly refusal: (code: number) => unknown,
  ) {
    const addon = producer._client;
    this.addon = typeof addon?.outboxProduceBatch === 'function' && addon.outboxLeanReports?.() === true ? (addon as PatchedAddon) : undefined;
  }

  /** Whether the loaded addon is the patched one (batch produce, lean reports in batches). */
  get patched(): boolean {
    return this.addon !== undefined;
  }

  /**
   * `delivered` settles with the reports; `handedOver` is false when librdkafka refused a record synchronously, so
   * that the records after it were not produced (known at once, long before `delivered` rejects).
   */
  produce(records: readonly SinkRecord[]): { delivered: Promise<void>; handedOver: boolean } {
    let handedOver = true;
    const delivered = new Promise<void>((resolve, reject) => {
      const call: ProduceCall = { id: this.nextId, seq: this.nextSeq++, due: 0, error: undefined, resolve, reject };
      this.nextId = (this.nextId + 1) & ID_MASK;
      if (this.addon) this.produceBatches(this.addon, call, records);
      else this.produceEach(call, records);
      handedOver = call.error === undefined;
      // Reports arrive through the event loop, never inside a produce call: counting after it is safe.
      if (call.due === 0) this.finish(call);
      else this.open.set(call.id, call);
    });
    return { delivered, handedOver };
  }

  private produceBatches(addon: PatchedAddon, call: ProduceCall, records: readonly SinkRecord[]): void {
    for (let start = 0; start < records.length; ) {
      const topic = records[start]!.topic;
      let end = start + 1;
      while (end < records.length && records[end]!.topic === topic) end++;
      const values = new Array<Buffer | null>(end - start);
      const keys = new Array<string | Buffer | null>(end - start);
      let timestamps: (number | null)[] | undefined;
      this.headerSets.reset();
      for (let i = start; i < end; i++) {
        const r = records[i]!;
        values[i - start] = r.value;
        keys[i - start] = r.key;
        if (r.timestampMs !== undefined) (timestamps ??= new Array<number | null>(end - start).fill(null))[i - start] = r.timestampMs;
        this.headerSets.add(r.headers);
      }
      let produced: number, code: number;
      try {
        [produced, code] = addon.outboxProduceBatch(topic, values, keys, this.headerSets.bytes(), timestamps, call.id);
      } catch (err) {
        call.error = err;
        return;
      }
      call.due += produced;
      if (code !== 0) {
        call.error = this.refusal(code);
        return;
      }
      start = end;
    }
  }

  private produceEach(call: ProduceCall, records: readonly SinkRecord[]): void {
    for (const r of records) {
      try {
        this.producer.produce(r.topic, null, r.value, r.key, r.timestampMs ?? null, call.id, rdkafkaHeaders(r.headers));
      } catch (err) {
        call.error = err;
        return;
      }
      call.due++;
    }
  }

  /**
   * The producer's `delivery-report` listener: one report (the error and the opaque, all that a lean report
   * carries), or, from the patched addon, a batch of successful reports as their opaques: call ids.
   */
  readonly report = (err: LibrdKafkaError | null | undefined, report: DeliveryReport | BatchedReports): void => {
    if ('outboxOpaques' in report) {
      for (const opaque of report.outboxOpaques) this.reported(opaque, undefined);
      return;
    }
    this.reported(report.opaque as number | undefined, err ?? undefined);
  };

  private reported(id: number | undefined, err: LibrdKafkaError | undefined): void {
    const call = id === undefined ? undefined : this.open.get(id);
    // A report of a call failed by failOpen() (the producer closed meanwhile) finds nothing.
    if (call === undefined) return;
    // A record error wins over a transient one: it sends the engine to isolate the record.
    if (err && (call.error === undefined || (isRecordErrorCode(err) && !isRecordErrorCode(call.error)))) call.error = err;
    if (--call.due === 0) {
      this.open.delete(call.id);
      this.finish(call);
    }
  }

  /**
   * Settles a call whose reports are all in, unless its failure says only that its producer failed (ERR__FATAL,
   * ERR__PURGE_QUEUE) while an earlier call still waits for reports: the earlier one carries the cause. Under the
   * gap-less guarantee a record the broker refuses makes the producer fatal; librdkafka then purges the queued
   * records of later calls, and their reports (or a later call's refusal at hand-over) can come before the refused
   * record's own. Settled first, such a call made the sink replace the producer, which failed the refused call as
   * collateral: the engine retried a record no retry can deliver (KAFKA_UNAVAILABLE) before it isolated it.
   */
  private finish(call: ProduceCall): void {
    if (call.error !== undefined && failedWithoutCause(call.error) && (this.oldestOpenSeq() ?? Infinity) < call.seq) {
      this.parked.push(call);
      this.parked.sort((a, b) => a.seq - b.seq);
      this.parkedTimer ??= setTimeout(() => this.releaseParked(Infinity), PARKED_MAX_MS);
      return;
    }
    this.settle(call);
    if (this.parked.length > 0) this.releaseParked(this.oldestOpenSeq() ?? Infinity);
  }

  /** Calls enter `open` in seq order, so the first is the oldest. */
  private oldestOpenSeq(): number | undefined {
    return this.open.values().next().value?.seq;
  }

  /** Settles the parked calls before `seq` (the oldest call still open), in order. */
  private releaseParked(seq: number): void {
    while (this.parked.length > 0 && this.parked[0]!.seq < seq) this.settle(this.parked.shift()!);
    if (this.parked.length === 0) {
      clearTimeout(this.parkedTimer);
      this.parkedTimer = undefined;
    }
  }

  /**
   * After the producer was closed its reports can no longer come: the calls still waiting fail, retriable and
   * collateral (closed for another call's failure, or at the relay's stop, when nothing retries).
   */
  failOpen(): void {
    const waiting = [...this.open.values(), ...this.parked].sort((a, b) => a.seq - b.seq);
    this.open.clear();
    this.parked = [];
    clearTimeout(this.parkedTimer);
    this.parkedTimer = undefined;
    for (const call of waiting) {
      call.due = 0;
      call.error ??= collateralFailure('the producer was closed before every record of the batch had its delivery report');
      this.settle(call);
    }
  }

  private settle(call: ProduceCall): void {
    if (call.error === undefined) call.resolve();
    else call.reject(classifyRdKafkaError(call.error));
  }
}

/** Header objects kept for reuse, by name: the relay's own eight and a row's usual extra ones. */
const MAX_REUSED_HEADER_NAMES = 256;
const headerObjects = new Map<string, Record<string, string | Buffer>>();
const headerList: MessageHeader[] = [];

/**
 * librdkafka's header list for an addon without the encoded form: one single-key object per header, as the
 * binding wants it. The binding copies every header into librdkafka's message during produce(), so one list and
 * one object per header name serve every record: a record costs no header allocations (10 objects each before, a large share of a drain's garbage).
 * The result is valid until the next call. Measured with the relay's 8 headers: the binding's own conversion
 * (property names read, key and value copied per header) is ~4 µs a record whatever is passed; a record without
 * headers ~1 µs in all.
 */
export function rdkafkaHeaders(headers: Record<string, string | Buffer>): MessageHeader[] {
  headerList.length = 0;
  for (const name in headers) {
    let header = headerObjects.get(name);
    if (header === undefined) {
      // No prototype: a "__proto__" header (a row's headers column may have one) stays a property of its own, which
      // the binding reads; on a plain object the assignment below would set the prototype and the header be lost.
      header = Object.create(null) as Record<string, string | Buffer>;
      // Names from a row's headers column are the producer's choice: past the cap, one object per use.
      if (headerObjects.size < MAX_REUSED_HEADER_NAMES) headerObjects.set(name, header);
    }
    header[name] = headers[name]!;
    headerList.push(header);
  }
  return headerList;
}
