import { freePort } from '../stack/ports.js';
import type { BenchDatabase } from './fixture.js';
import { LatencyProbe, type LatencySummary } from './latency.js';
import { BenchRelay, type KafkaClient } from './relay-process.js';
import { runWriters } from './writers.js';

export interface SteadyLevel {
  /** Target events/s. */
  rate: number;
  /** The highest rate the relay sustains (reported as "max"). */
  sustainedMax?: boolean;
  rowsPerTxn: number;
  connections: number;
}

export interface SteadyResult extends LatencySummary {
  client: KafkaClient;
  target: number;
  sustainedMax: boolean;
  /** Events/s the writers committed. */
  achieved: number;
  cpuSecondsPer1k: number;
  /** Produce calls (batches) per 1k events: what delivery.coalesce and pipelining bring down at low rates. */
  batchesPer1k: number;
  peakRssMiB: number;
}

const WARMUP_S = 3;

/**
 * One relay process streaming while writers commit at each level in turn: latency from commit to the broker's
 * append, taken by a consumer, after a warm-up; after each level the relay catches up before the next starts.
 */
export async function measureSteady(db: BenchDatabase, brokers: string[], topic: string, client: KafkaClient, slot: string, levels: SteadyLevel[], seconds: number, entry?: string): Promise<SteadyResult[]> {
  const relay = new BenchRelay({ url: db.url, brokers, slot, client, entry, httpPort: await freePort() });
  const probe = new LatencyProbe(brokers, topic);
  const results: SteadyResult[] = [];
  try {
    await relay.streaming();
    await probe.start();
    await runWriters(db, { rate: 100, seconds: WARMUP_S, rowsPerTxn: 1, connections: 1 }); // consumer joined, producer warm
    for (const level of levels) {
      const cpuBefore = relay.cpuSeconds();
      const batchesBefore = await relay.produceCalls();
      const warmup = setTimeout(() => probe.record(), WARMUP_S * 1000);
      const written = await runWriters(db, { rate: level.rate, rowsPerTxn: level.rowsPerTxn, connections: level.connections, seconds: seconds + WARMUP_S });
      clearTimeout(warmup);
      const end = await db.walLsn();
      while (!(await db.confirmedReached(slot, end))) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300)); // the consumer's last fetch
      results.push({
        client,
        target: level.rate,
        sustainedMax: level.sustainedMax === true,
        achieved: written.events / written.seconds,
        ...probe.summary(),
        cpuSecondsPer1k: (relay.cpuSeconds() - cpuBefore) / (written.events / 1000),
        batchesPer1k: ((await relay.produceCalls()) - batchesBefore) / (written.events / 1000),
        peakRssMiB: relay.peakRssMiB(),
      });
    }
  } finally {
    await probe.stop();
    await relay.stop();
  }
  return results;
}
