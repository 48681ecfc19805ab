import { Kafka, logLevel, type Admin } from 'kafkajs';
import { HEADER } from '../src/route/row-mapper.js';

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Per partition, an offset: where the recorded records start, or where they end. */
type Offsets = Map<number, number>;

/** How long reading a level's records back may take before the bench gives up on it. */
const READ_TIMEOUT_MS = 120_000;

/**
 * Per record, the broker's append time (the topic uses LogAppendTime, so the record timestamp is set when the
 * leader wrote it, just before it acknowledged with acks=all on one broker) minus the transaction's commit time
 * from the `outbox-commit-time` header (ms precision). Both times travel in the record, so the probe reads the
 * records once the level is over: a consumer fetching during the level would take CPU from the broker and the
 * relay, and commit offsets through the broker, while they are being measured.
 */
export class LatencyProbe {
  private readonly kafka: Kafka;
  private readonly admin: Admin;
  private from: Promise<Offsets> | undefined;

  constructor(brokers: string[], private readonly topic: string) {
    this.kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING, clientId: 'bench-latency' });
    this.admin = this.kafka.admin();
  }

  async start(): Promise<void> {
    await this.admin.connect();
  }

  /** Records from here on count: the records the broker appends after this call (after a warm-up). */
  record(): void {
    this.from = this.endOffsets();
    this.from.catch(() => undefined); // awaited in summary(), where a failure surfaces
  }

  /** The records appended since record() until now, read back. */
  async summary(): Promise<LatencySummary> {
    if (!this.from) throw new Error('latency probe: summary() before record()');
    const from = await this.from;
    this.from = undefined;
    const s = await this.read(from, await this.endOffsets());
    s.sort((a, b) => a - b);
    const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
    return { count: s.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: s[s.length - 1] ?? NaN };
  }

  async stop(): Promise<void> {
    await this.admin.disconnect();
  }

  private async endOffsets(): Promise<Offsets> {
    const partitions = await this.admin.fetchTopicOffsets(this.topic);
    return new Map(partitions.map((p) => [p.partition, Number(p.high)]));
  }

  /** The samples of the records at offsets [from, to) of each partition. */
  private async read(from: Offsets, to: Offsets): Promise<number[]> {
    const samples: number[] = [];
    const left = new Set([...to].filter(([partition, end]) => end > (from.get(partition) ?? 0)).map(([partition]) => partition));
    if (left.size === 0) return samples;
    const consumer = this.kafka.consumer({ groupId: `bench-latency-${process.pid}-${Date.now()}` });
    let timer: NodeJS.Timeout | undefined;
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: this.topic, fromBeginning: false });
      const done = new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`latency probe: the level's records of ${this.topic} not read back within ${READ_TIMEOUT_MS / 1000} s`)), READ_TIMEOUT_MS);
        void consumer.run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const start = from.get(batch.partition) ?? 0;
            const end = to.get(batch.partition)!;
            for (const m of batch.messages) {
              const offset = Number(m.offset);
              if (offset < start) continue; // a compressed batch can begin before the offset sought
              if (offset >= end) break;
              const committed = Date.parse(m.headers?.[HEADER.commitTime]?.toString() ?? '');
              if (!Number.isNaN(committed)) samples.push(Number(m.timestamp) - committed);
            }
            if (Number(batch.lastOffset()) >= end - 1) left.delete(batch.partition);
            if (left.size === 0) resolve();
          },
        }).catch(reject);
      });
      for (const partition of left) consumer.seek({ topic: this.topic, partition, offset: String(from.get(partition) ?? 0) });
      await done;
    } finally {
      clearTimeout(timer);
      await consumer.disconnect();
    }
    return samples;
  }
}
