import type { Checkpoint } from '../checkpoint/checkpoint.js';

/**
 * The seam between the pipeline and a broker. `send` resolves once the broker acknowledged every record of the
 * batch (acks=all), or rejects with a classified error. Records within a batch keep their order per partition.
 */
export interface SinkRecord {
  topic: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string | Buffer>;
  /** Kafka record timestamp (ms since the epoch), from the mapping's event-time column; absent: the send time. */
  timestampMs?: number;
}

export interface Sink {
  /**
   * How many send() calls the delivery may have in flight at once (default 1). Above 1 the sink promises that
   * records of successive calls reach each partition in call order, and that a retried call cannot overtake a
   * later one (the idempotent producer's ordering).
   */
  readonly pipelineDepth?: number;
  connect(): Promise<void>;
  send(records: readonly SinkRecord[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * The exactly-once producer: `send` produces into the open Kafka transaction (beginning one if none is open),
 * `commit` adds the checkpoint record and commits, `abort` drops the open transaction. Errors carry
 * `details.transaction`: 'retry' when the same call may be retried inside the transaction, 'abort' otherwise
 * (the default); fencing is PRODUCER_FENCED, a transaction the broker timed out KAFKA_TXN_TIMEOUT.
 */
export interface TransactionalSink extends Sink {
  commit(checkpoint: Checkpoint): Promise<void>;
  abort(): Promise<void>;
}
