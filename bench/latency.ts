import { Kafka, logLevel, type Consumer } from 'kafkajs';

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/**
 * Reads the bench topic and takes, per record, the broker's append time (the topic uses LogAppendTime, so the
 * record timestamp is set when the leader wrote it, just before it acknowledged with acks=all on one broker)
 * minus the transaction's commit time from the `outbox-commit-time` header (ms precision).
 */
export class LatencyProbe {
  private readonly consumer: Consumer;
  private samples: number[] = [];
  private recording = false;

  constructor(brokers: string[], private readonly topic: string) {
    this.consumer = new Kafka({ brokers, logLevel: logLevel.NOTHING, clientId: 'bench-latency' }).consumer({ groupId: `bench-${Date.now()}`, maxWaitTimeInMs: 20 });
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: false });
    await this.consumer.run({
      eachBatch: async ({ batch }) => {
        if (!this.recording) return;
        for (const m of batch.messages) {
          const committed = Date.parse(m.headers?.['outbox-commit-time']?.toString() ?? '');
          if (!Number.isNaN(committed)) this.samples.push(Number(m.timestamp) - committed);
        }
      },
    });
  }

  /** Starts recording (after a warm-up) from now on. */
  record(): void {
    this.samples = [];
    this.recording = true;
  }

  summary(): LatencySummary {
    this.recording = false;
    const s = [...this.samples].sort((a, b) => a - b);
    const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
    return { count: s.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: s[s.length - 1] ?? NaN };
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}
