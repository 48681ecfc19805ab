import { freePort } from '../stack/ports.js';
import { brokerGcPauses, type GcPauses } from './broker-gc.js';
import { CpuMeter, type CpuReport } from './cpu.js';
import type { BenchDatabase } from './fixture.js';
import { histogramDelta, histogramQuantileMs, readGauge, readHistogram } from './histogram.js';
import { LatencyProbe, type LatencySummary } from './latency.js';
import { medianBy } from './median.js';
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
  /**
   * p99 of commit → PostgreSQL sent the transaction (the relay's `source_delay_seconds`, PostgreSQL's clock) and
   * of produce → acknowledged per batch (`produce_latency_seconds`), in ms, interpolated within the histograms'
   * buckets: where the end-to-end tail comes from. Absent in results of runs before they were measured.
   */
  sourceP99?: number;
  produceP99?: number;
  /**
   * p99 of read by the relay → acknowledged, per event (`event_latency_seconds`), in ms: the relay's queue and the
   * produce round trip, with events that waited behind a slow batch counted each. Absent in older results.
   */
  relayP99?: number;
  /**
   * The relay's longest gap between two turns of its event loop during the level after its warm-up, in ms
   * (prom-client's `nodejs_eventloop_lag_max_seconds`, which Node samples every 10 ms and resets at each scrape:
   * ~10 ms when nothing held the main thread). A garbage collection or a long synchronous step of the relay shows
   * here; a tail much longer than this formed outside the relay's main thread. Absent in older results.
   */
  loopGapMs?: number;
  /**
   * Share of the level after its warm-up during which the relay's in-flight window was full and it read nothing
   * from PostgreSQL (`outbox_relay_window_full_seconds_total`): Kafka's acknowledgements set the pace then, and
   * the commit → sent delay grew with it. Absent in older results.
   */
  windowFullShare?: number;
  /** The broker JVM's stop-the-world GC pauses during the level after its warm-up (absent without its GC log). */
  brokerGc?: GcPauses;
  /** The p99 of every run of this level, when it ran more than once (this result is the run with the median p99). */
  p99Runs?: number[];
  /** Runs of this level other than the median one that were not sustained (notSustained), numbered from 1. Absent when none. */
  shortRuns?: { run: number; why: string }[];
  /**
   * Who used the cores during the level after its warm-up: the relay, its walsender, the broker and the bench's
   * process (its writers only wait for their procedure calls; the latency probe reads the records after the
   * level); "other" is mostly the writers' PostgreSQL backends, which run those procedures. Absent in older results.
   */
  cpu?: CpuReport;
}

/**
 * The run with the median p99, carrying every run's p99, the highest peak RSS of them all, and which other runs
 * were not sustained (the median run says so itself): a level the relay fell behind at in one run of three is
 * not reported as if it kept up in all.
 */
export function medianSteady(runs: SteadyResult[]): SteadyResult {
  const median = medianBy(runs, (r) => r.p99);
  const shortRuns = runs.flatMap((r, i) => {
    const why = r === median ? undefined : notSustained(r);
    return why === undefined ? [] : [{ run: i + 1, why }];
  });
  return { ...median, peakRssMiB: Math.max(...runs.map((r) => r.peakRssMiB)), ...(runs.length > 1 ? { p99Runs: runs.map((r) => r.p99) } : {}), ...(shortRuns.length > 0 ? { shortRuns } : {}) };
}

/** A level whose writers committed less than this share of its rate did not run at that rate (the writers, not the relay, fell short). */
export const WRITTEN_SHARE = 0.9;
/** A level whose median commit → append latency exceeds this is one the relay did not keep up with. */
export const SUSTAINED_P50_MS = 50;

/**
 * Why a level is not one the relay sustained, or undefined when it is. A relay that falls behind shows it as a
 * median latency growing with the backlog; writers that could not commit at the level's rate (on a small machine
 * they share the cores) measured a lower rate than it names.
 */
export function notSustained(r: Pick<SteadyResult, 'p50' | 'achieved' | 'target'>): string | undefined {
  if (r.p50 > SUSTAINED_P50_MS) return `not sustained: the relay fell behind (p50 ${r.p50} ms)`;
  if (r.achieved < WRITTEN_SHARE * r.target) return `not held: the writers committed only ${Math.round(r.achieved).toLocaleString('en-US')} events/s`;
  return undefined;
}

/**
 * The next rate to try for a top level that was not sustained: 15 % lower, and below what the writers did commit
 * where that was less than the rate (15 % below a rate they could not reach would likely miss again: on
 * 2026-12-02 four such steps from 71,100 ended at 37,100, still not held).
 */
export function nextTopRate(r: Pick<SteadyResult, 'achieved' | 'target'>): number {
  return Math.round((Math.min(r.target, r.achieved) * 0.85) / 100) * 100;
}

const SOURCE_DELAY = 'outbox_relay_source_delay_seconds';
const PRODUCE_LATENCY = 'outbox_relay_produce_latency_seconds';
const EVENT_LATENCY = 'outbox_relay_event_latency_seconds';
const LOOP_GAP = 'nodejs_eventloop_lag_max_seconds';
export const WINDOW_FULL = 'outbox_relay_window_full_seconds_total';

const WARMUP_S = 3;

/** The broker process the stack started: its CPU time and GC pauses are read (both undefined for an external one). */
export interface BrokerProcess {
  pid: number | undefined;
  gcLog: string | undefined;
}

/**
 * One relay process streaming while writers commit at each level in turn: latency from commit to the broker's
 * append, of the records appended after a warm-up, read back once the relay caught up after the level.
 */
export async function measureSteady(db: BenchDatabase, brokers: string[], topic: string, client: KafkaClient, slot: string, levels: SteadyLevel[], seconds: number, broker: BrokerProcess, entry?: string, nodeArgs?: string[]): Promise<SteadyResult[]> {
  const relay = new BenchRelay({ url: db.url, brokers, slot, client, entry, nodeArgs, httpPort: await freePort() });
  const probe = new LatencyProbe(brokers, topic);
  const results: SteadyResult[] = [];
  try {
    await relay.streaming();
    await probe.start();
    await runWriters(db, { rate: 100, seconds: WARMUP_S, rowsPerTxn: 1, connections: 1 }); // the relay's producer warm
    for (const level of levels) {
      const cpuBefore = relay.cpuSeconds();
      const atStart = await relay.metrics();
      // The relay's histograms from the end of the warm-up on, as the probe's samples.
      let atWarmupEnd: Promise<string> | undefined;
      let warmupEndedAtMs = Date.now();
      let meter: CpuMeter | undefined;
      const walsender = await db.walsenderPid(slot);
      const warmup = setTimeout(() => {
        probe.record();
        meter = new CpuMeter();
        meter.track('relay', relay.pid, false, true);
        meter.track('walsender', walsender);
        meter.track('broker', broker.pid);
        meter.track('bench', process.pid);
        warmupEndedAtMs = Date.now();
        atWarmupEnd = relay.metrics();
        atWarmupEnd.catch(() => undefined); // awaited below, where a failure surfaces
      }, WARMUP_S * 1000);
      const written = await runWriters(db, { rate: level.rate, rowsPerTxn: level.rowsPerTxn, connections: level.connections, seconds: seconds + WARMUP_S });
      clearTimeout(warmup);
      const cpu = meter?.finish();
      const end = await db.walLsn();
      while (!(await db.confirmedReached(slot, end))) await new Promise((r) => setTimeout(r, 50));
      const after = await relay.metrics();
      const afterAtMs = Date.now();
      const afterWarmup = await (atWarmupEnd ?? atStart);
      const delta = (name: string, before = afterWarmup) => histogramDelta(readHistogram(after, name), readHistogram(before, name));
      results.push({
        client,
        target: level.rate,
        sustainedMax: level.sustainedMax === true,
        achieved: written.events / written.seconds,
        ...(await probe.summary()),
        cpuSecondsPer1k: (relay.cpuSeconds() - cpuBefore) / (written.events / 1000),
        batchesPer1k: (delta(PRODUCE_LATENCY, atStart).at(-1)?.count ?? NaN) / (written.events / 1000),
        peakRssMiB: relay.peakRssMiB(),
        sourceP99: histogramQuantileMs(delta(SOURCE_DELAY), 0.99),
        produceP99: histogramQuantileMs(delta(PRODUCE_LATENCY), 0.99),
        relayP99: histogramQuantileMs(delta(EVENT_LATENCY), 0.99),
        // The scrape at the end of the warm-up reset it: the level's own.
        loopGapMs: readGauge(after, LOOP_GAP) * 1000,
        // Up to the scrape after the catch-up, as the counter is.
        windowFullShare: (readGauge(after, WINDOW_FULL) - readGauge(afterWarmup, WINDOW_FULL)) / ((afterAtMs - warmupEndedAtMs) / 1000),
        brokerGc: brokerGcPauses(broker.gcLog, warmupEndedAtMs, afterAtMs),
        ...(cpu ? { cpu } : {}),
      });
    }
  } finally {
    await probe.stop();
    await relay.stop();
  }
  return results;
}
