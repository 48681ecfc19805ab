import { freePort } from '../stack/ports.js';
import { CpuMeter, type CpuReport } from './cpu.js';
import type { BenchDatabase } from './fixture.js';
import { readGauge } from './histogram.js';
import { medianBy } from './median.js';
import { BenchRelay, type KafkaClient } from './relay-process.js';
import { WINDOW_FULL } from './steady.js';

export interface DrainResult {
  client: KafkaClient;
  /** Process start → the backlog's end LSN confirmed: what a restarted relay takes, start-up included. */
  seconds: number;
  eventsPerSecond: number;
  /**
   * Events/s from the `streaming from PostgreSQL` line to the end LSN confirmed: the throughput the ratios compare
   * with pg_recvlogical's and Kafka's own producer's, which leave their start-up out too (cold start is a row of
   * its own).
   */
  streamingEventsPerSecond: number;
  peakRssMiB: number;
  cpuSecondsPer1k: number;
  coldStartMs: number;
  /** Who used the cores during the drain: relay, walsender, broker, and the rest of the machine. */
  cpu: CpuReport;
  /**
   * Share of the drain during which the relay's in-flight window was full (it read nothing from PostgreSQL,
   * Kafka's acknowledgements set the pace). Absent in older results.
   */
  windowFullShare?: number;
  /** Events/s of every run of this drain, when it ran more than once (this result is the median one). */
  runs?: number[];
  /** Events/s while streaming of every run, likewise. */
  streamingRuns?: number[];
}

/** The median run by events/s while streaming, carrying every run's rates and the highest peak RSS of them all. */
export function medianDrain(runs: DrainResult[]): DrainResult {
  return {
    ...medianBy(runs, (r) => r.streamingEventsPerSecond),
    peakRssMiB: Math.max(...runs.map((r) => r.peakRssMiB)),
    runs: runs.map((r) => r.eventsPerSecond),
    streamingRuns: runs.map((r) => r.streamingEventsPerSecond),
  };
}

const POLL_MS = 50;

/** Starts the relay on a slot that is `events` behind and times it until the slot confirmed the backlog's end LSN. */
export async function measureDrain(db: BenchDatabase, brokers: string[], client: KafkaClient, slot: string, endLsn: string, events: number, brokerPid: number | undefined, nodeArgs: string[] = [], entry?: string): Promise<DrainResult> {
  const meter = new CpuMeter();
  meter.track('broker', brokerPid);
  const relay = new BenchRelay({ url: db.url, brokers, slot, client, nodeArgs, entry, httpPort: await freePort() });
  meter.track('relay', relay.pid, true, true);
  try {
    while (!(await db.confirmedReached(slot, endLsn))) {
      if (relay.exitCode !== undefined) throw new Error(`relay exited (${relay.exitCode}) before draining the backlog`);
      // The walsender is a backend of its own, started when the relay connects.
      meter.track('walsender', await db.walsenderPid(slot), true);
      meter.sample();
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const seconds = (performance.now() - relay.startedAt) / 1000;
    const streamingAfterMs = relay.streamingAfterMs;
    if (streamingAfterMs === undefined) throw new Error('the relay confirmed the backlog but its "streaming from PostgreSQL" line was not seen');
    const streamingSeconds = seconds - streamingAfterMs / 1000;
    const cpu = meter.finish();
    const windowFullSeconds = readGauge(await relay.metrics(), WINDOW_FULL);
    return {
      client,
      seconds,
      eventsPerSecond: events / seconds,
      streamingEventsPerSecond: events / streamingSeconds,
      peakRssMiB: relay.peakRssMiB(),
      cpuSecondsPer1k: relay.cpuSeconds() / (events / 1000),
      coldStartMs: streamingAfterMs,
      windowFullShare: windowFullSeconds / seconds,
      cpu,
    };
  } finally {
    await relay.stop();
  }
}
