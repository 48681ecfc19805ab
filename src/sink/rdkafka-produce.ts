import type { DeliveryReport, LibrdKafkaError, MessageHeader } from '@confluentinc/kafka-javascript';
import { RelayError } from '../errors.js';
import { ENCODED_HEADERS_VERSION, encodeHeaders } from './encoded-headers.js';
import { classifyRdKafkaError, isRecordErrorCode } from './rdkafka-errors.js';
import type { SinkRecord } from './sink.js';

/** What produce-and-wait needs of librdkafka's native producer (`Producer.produce`); tests pass a fake. */
export interface NativeProducer {
  produce(topic: string, partition: null, value: Buffer | null, key: string | Buffer | null, timestamp: number | null, opaque: ProduceCall, headers: MessageHeader[] | Buffer): unknown;
  /** The addon (the binding's `_client`): it has these methods when scripts/patch-kafka-client.mjs rebuilt it. */
  readonly _client?: { outboxEncodedHeaders?: () => number; outboxLeanReports?: () => boolean; outboxBatchedReports?: () => boolean };
}

/** The successful delivery reports of one flush, as the patched addon batches them: each record's opaque. */
export interface BatchedReports {
  outboxOpaques: (ProduceCall | undefined)[];
}

/** The opaque of every record of one send(): counts the delivery reports still due. */
export interface ProduceCall {
  due: number;
  error: unknown;
  resolve(): void;
  reject(error: RelayError): void;
}

/**
 * Produce-and-wait on the native producer: one counter object per call instead of one promise per record.
 * `produce` hands every record to librdkafka synchronously (so calls enqueue in call order, which the idempotent
 * producer keeps per partition) and settles only when each produced record has its delivery report, even when one
 * failed early: an engine that re-sends on the first error would otherwise race records still queued. A
 * synchronous produce() refusal (queue full, unknown partition, a fatal producer) stops the call there; it
 * rejects with that error once the records before it have reported.
 */
export class ProduceCalls {
  /** Calls with reports still due, so that closing the producer can fail them instead of leaving them hanging. */
  private readonly open = new Set<ProduceCall>();
  /** Headers as one encoded Buffer where the addon reads it (about 5 µs a record cheaper with the relay's eight), else as the binding's array. */
  readonly encodedHeaders: boolean;
  /** Whether the producer's delivery reports carry only the error and the opaque, all `report` reads (no topic or key copy per record). */
  readonly leanReports: boolean;
  /** Whether the successful ones among them come as one batch per flush (`{ outboxOpaques }`) instead of one call into JavaScript each. */
  readonly batchedReports: boolean;
  private readonly headersOf: (headers: Record<string, string | Buffer>) => MessageHeader[] | Buffer;

  /** Takes a producer not yet connected: lean reports are switched on before its first report. */
  constructor(private readonly producer: NativeProducer) {
    this.encodedHeaders = producer._client?.outboxEncodedHeaders?.() === ENCODED_HEADERS_VERSION;
    this.headersOf = this.encodedHeaders ? encodeHeaders : rdkafkaHeaders;
    this.leanReports = producer._client?.outboxLeanReports?.() === true;
    this.batchedReports = producer._client?.outboxBatchedReports?.() === true;
  }

  produce(records: readonly SinkRecord[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const call: ProduceCall = { due: 0, error: undefined, resolve, reject };
      for (const r of records) {
        try {
          this.producer.produce(r.topic, null, r.value, r.key, r.timestampMs ?? null, call, this.headersOf(r.headers));
        } catch (err) {
          call.error = err;
          break;
        }
        // Reports arrive through the event loop, never inside produce(): counting after it is safe.
        call.due++;
      }
      if (call.due === 0) this.settle(call);
      else this.open.add(call);
    });
  }

  /**
   * The producer's `delivery-report` listener: one report (the error and the opaque, all that a lean report
   * carries), or, from the patched addon, a batch of successful reports as their opaques.
   */
  readonly report = (err: LibrdKafkaError | null | undefined, report: DeliveryReport | BatchedReports): void => {
    if ('outboxOpaques' in report) {
      for (const call of report.outboxOpaques) if (call) this.reported(call, undefined);
      return;
    }
    const call = report.opaque as ProduceCall | undefined;
    if (call) this.reported(call, err ?? undefined);
  };

  private reported(call: ProduceCall, err: LibrdKafkaError | undefined): void {
    // A record error wins over a transient one: it sends the engine to isolate the record.
    if (err && (call.error === undefined || (isRecordErrorCode(err) && !isRecordErrorCode(call.error)))) call.error = err;
    if (--call.due === 0) {
      this.open.delete(call);
      this.settle(call);
    }
  }

  /** After the producer was closed its reports can no longer come: the calls still waiting fail (retriable). */
  failOpen(): void {
    for (const call of this.open) {
      call.due = 0;
      call.error ??= new RelayError('KAFKA_UNAVAILABLE', 'the producer was closed before every record of the batch had its delivery report', { retriable: true });
      this.settle(call);
    }
    this.open.clear();
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
      header = {};
      // Names from a row's headers column are the producer's choice: past the cap, one object per use.
      if (headerObjects.size < MAX_REUSED_HEADER_NAMES) headerObjects.set(name, header);
    }
    header[name] = headers[name]!;
    headerList.push(header);
  }
  return headerList;
}
