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
  connect(): Promise<void>;
  send(records: readonly SinkRecord[]): Promise<void>;
  close(): Promise<void>;
}
