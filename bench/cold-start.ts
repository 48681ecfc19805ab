import type { BenchDatabase } from './fixture.js';
import { BenchRelay, type KafkaClient } from './relay-process.js';

export interface ColdStart {
  client: KafkaClient;
  /** Median of the runs, ms from spawn to "streaming from PostgreSQL". */
  medianMs: number;
  runsMs: number[];
  idleRssMiB: number;
}

/** Process start → streaming, on an idle slot, a few times (the first run also pays for a cold disk cache). */
export async function measureColdStart(db: BenchDatabase, brokers: string[], client: KafkaClient, slot: string, runs = 3): Promise<ColdStart> {
  const runsMs: number[] = [];
  let idleRssMiB = 0;
  for (let i = 0; i < runs; i++) {
    const relay = new BenchRelay({ url: db.url, brokers, slot, client });
    try {
      await relay.streaming();
      runsMs.push(relay.streamingAfterMs!);
      await new Promise((r) => setTimeout(r, 1000));
      idleRssMiB = Math.max(idleRssMiB, relay.peakRssMiB());
    } finally {
      await relay.stop();
    }
  }
  const sorted = [...runsMs].sort((a, b) => a - b);
  return { client, medianMs: sorted[Math.floor(sorted.length / 2)]!, runsMs, idleRssMiB };
}
