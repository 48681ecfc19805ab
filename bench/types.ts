import type { ColdStart } from './cold-start.js';
import type { CpuReport } from './cpu.js';
import type { ProfileSummary } from './cpu-profile.js';
import type { DrainResult } from './drain.js';
import type { KafkaPerfResult } from './kafka-perf.js';
import type { Machine } from './machine.js';
import type { SteadyResult } from './steady.js';

export interface Shape {
  name: string;
  rowsPerTxn: number;
  insertSeconds: number;
  /** The median of `recvlogicalRuns` (events/s of each run). */
  recvlogicalEventsPerSecond: number;
  recvlogicalRuns: number[];
  recvlogicalCpu: CpuReport;
  /** Per client, its median drain (peak RSS: the highest of its runs). */
  drains: DrainResult[];
  /** Where the default client's main thread went in one more, profiled drain: only when its median missed the target. */
  profile?: ProfileSummary;
}

/** What one `npm run bench` writes to bench/results/<timestamp>.json. */
export interface BenchResults {
  date: string;
  command: string;
  events: number;
  producerEvents: number;
  steadySeconds: number;
  machine: Machine;
  /** Load average (1 min) when the run started: the machine is shared with whatever else runs. */
  loadAverage: number;
  /** The client the relay uses unless told otherwise: the targets apply to it. */
  defaultClient: string;
  /** Kafka's own producer benchmark on the same broker: the sink-side limit (median run). */
  kafkaPerf: KafkaPerfResult;
  /** Events/s of each ProducerPerformance run. */
  kafkaPerfRuns: number[];
  /** How often each drain and limit ran (BENCH_RUNS); the tables show the median run. */
  runs: number;
  /** Events/s of the bare sink (the relay's own sink, as many batches in flight as the engine keeps), by client: a second figure. */
  producer: Record<string, number>;
  coldStarts: ColdStart[];
  /** Spawn → exit of `outbox-relay --help`. */
  helpStart: { medianMs: number; runsMs: number[] };
  shapes: Shape[];
  steady: SteadyResult[];
}
