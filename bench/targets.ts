import { cpuShares, type CpuReport } from './cpu.js';
import { describeProfile } from './cpu-profile.js';
import type { DrainResult } from './drain.js';
import { describeStartup } from './startup-split.js';
import { notSustained, type SteadyResult } from './steady.js';
import type { BenchResults, Shape } from './types.js';

/** Issue 11's targets, checked against one run's results for the default client. */
export interface TargetCheck {
  target: string;
  met: boolean | undefined;
  result: string;
}

/** 150 MB, the target, in MiB (the unit the tables use). */
export const RSS_TARGET_MIB = 150e6 / 2 ** 20;
export const DRAIN_SHARE_TARGET = 0.9;
const COLD_START_TARGET_MS = 500;
const P99_LOW_RATE_MS = 5;
const P99_MAX_RATE_MS = 50;

/**
 * CPU s / 1k events of the run of 2026-11-24 (1M events, quiet machine), before the pipelined delivery engine:
 * the "today" the CPU target compares with, per row.
 */
const CPU_BEFORE: Record<string, number> = {
  'drain 1 kafkajs': 0.058,
  'drain 1 rdkafka': 0.041,
  'drain 100 kafkajs': 0.042,
  'drain 100 rdkafka': 0.028,
  'steady 1000 kafkajs': 0.348,
  'steady 5000 kafkajs': 0.09,
  'steady max kafkajs': 0.051,
  'steady 1000 rdkafka': 0.226,
  'steady 5000 rdkafka': 0.061,
  'steady max rdkafka': 0.029,
};

const n = (v: number) => Math.round(v).toLocaleString('en-US');
const pct = (v: number) => `${Math.round(v * 100)} %`;
/** A share of time the relay's in-flight window was full ('–' where not measured). */
export const windowShare = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : pct(v));
const all = (checks: boolean[]) => (checks.length === 0 ? undefined : checks.every(Boolean));

/** min(pg_recvlogical of the same WAL, Kafka's own producer): the most any relay could deliver. */
export function drainLimit(r: Pick<BenchResults, 'kafkaPerf'>, s: Pick<Shape, 'recvlogicalEventsPerSecond'>): number {
  return Math.min(s.recvlogicalEventsPerSecond, r.kafkaPerf.eventsPerSecond);
}

/**
 * What bounds a drain that missed its target, from the measured CPU shares. The machine's ceiling is what its
 * cores would carry if every idle cycle went to this drain at the CPU per event every process (relay,
 * walsender, broker, the rest) spent in it: a relay that only used idle cores better cannot pass it, one that
 * spends less CPU per event can.
 */
export function drainBound(d: DrainResult, cores: number, limit: number): string {
  const relayCpu = d.cpu.processes.find((p) => p.process === 'relay');
  const relay = relayCpu?.cores ?? 0;
  // The main thread's own share where it was measured; else the process's, librdkafka's and V8's threads included.
  const mainThread = relayCpu?.threads?.find((t) => t.group === 'main thread')?.cores;
  // A full window stops the relay reading: Kafka's acknowledgements, not the relay's thread, set the pace.
  if ((d.windowFullShare ?? 0) >= 0.5) return `Kafka's acknowledgements: the relay's in-flight window was full ${windowShare(d.windowFullShare)} of the drain (${cpuShares(d.cpu, cores)})`;
  if (d.cpu.machineCores >= 0.9 * cores) return `the machine's CPU (${cpuShares(d.cpu, cores)})`;
  const ceiling = (cores * d.eventsPerSecond) / d.cpu.machineCores;
  const perEventUs = (1e6 * d.cpu.machineCores) / d.eventsPerSecond;
  const machine = `; at this drain's CPU per event (${perEventUs.toFixed(1)} µs of all processes, ${((1e6 * relay) / d.eventsPerSecond).toFixed(1)} µs of it the relay's) ${cores} fully busy cores would carry ${n(ceiling)} events/s, ${pct(ceiling / limit)} of the limit`;
  if ((mainThread ?? relay) >= 0.9) return `the relay's main thread (${cpuShares(d.cpu, cores)}; the in-flight window full ${windowShare(d.windowFullShare)} of the drain)${machine}`;
  return `neither CPU nor the relay's main thread is saturated: waiting on round trips (${cpuShares(d.cpu, cores)})${machine}`;
}

const latencyMet = (s: SteadyResult) => (s.sustainedMax ? s.p99 < P99_MAX_RATE_MS : s.p99 <= P99_LOW_RATE_MS);

/**
 * Where a missed tail comes from: commit → PostgreSQL sent it, the relay's read → acknowledged per event and
 * the produce round trip per batch, from the relay's histograms; whether the relay's own main thread stalled
 * (its longest event-loop gap) or the broker's (its longest GC pause); whether the relay stopped reading for
 * Kafka (its window full); and who used the cores meanwhile.
 */
function latencySplit(s: SteadyResult, cores: number): string {
  if (s.sourceP99 === undefined || s.produceP99 === undefined) return '';
  return ` (p99 commit → sent ${Math.round(s.sourceP99)} ms,${s.relayP99 === undefined ? '' : ` read → acknowledged per event ${Math.round(s.relayP99)} ms,`} produce → acknowledged per batch ${Math.round(s.produceP99)} ms${s.loopGapMs === undefined ? '' : `, the relay's longest event-loop gap ${Math.round(s.loopGapMs)} ms`}${s.brokerGc === undefined ? '' : `, the broker's longest GC pause ${Math.round(s.brokerGc.longestMs)} ms`}${s.windowFullShare === undefined ? '' : `, the in-flight window full ${windowShare(s.windowFullShare)} of the level`}${s.cpu ? `; ${cpuShares(s.cpu, cores)}` : ''})`;
}

/**
 * How long the relay's main thread, the walsender and the broker waited for a core for each second they ran, e.g.
 * "for each second on a core the relay's main thread waited 1.9 s for one, the walsender 1.2 s, the broker 7.8 s",
 * and the longest of those waits; undefined for older results, which have no waits.
 */
function waitsPerSecondRun(cpu: CpuReport): { text: string; longest: number } | undefined {
  const ratio = (used: { cores: number; waitedCores?: number } | undefined) => (used?.waitedCores === undefined || used.cores <= 0 ? undefined : used.waitedCores / used.cores);
  const of = (name: string) => cpu.processes.find((p) => p.process === name);
  const waits = [
    { who: "the relay's main thread", waited: ratio(of('relay')?.threads?.find((t) => t.group === 'main thread')) },
    { who: 'the walsender', waited: ratio(of('walsender')) },
    { who: 'the broker', waited: ratio(of('broker')) },
  ].flatMap(({ who, waited }) => (waited === undefined ? [] : [{ who, waited, seconds: `${waited.toFixed(1)} s` }]));
  const [first, ...rest] = waits;
  if (first === undefined) return undefined;
  return {
    text: `for each second on a core ${[`${first.who} waited ${first.seconds} for one`, ...rest.map((w) => `${w.who} ${w.seconds}`)].join(', ')}`,
    longest: Math.max(...waits.map((w) => w.waited)),
  };
}

/**
 * What bounds a missed tail, read from the level's own measurements: the machine's cores when they were busy
 * (≥ 90 %; the writers, their PostgreSQL backends and the bench are then named with their share), else the wait
 * for a core where one of the relay's main thread, the walsender and the broker waited at least as long as it ran
 * (cores idle on average can still be taken when a commit wakes them all at once), and a stall of the relay's
 * main thread or the broker's GC as long as half the tail; and which side of the relay's read the tail formed on:
 * before PostgreSQL sent the transactions (the walsender's wait for a core, or for the relay to read), or between
 * the relay's read and Kafka's acknowledgement.
 */
export function latencyBound(s: SteadyResult, cores: number): string | undefined {
  if (s.sourceP99 === undefined || s.relayP99 === undefined) return undefined;
  const where =
    s.sourceP99 >= s.relayP99
      ? 'the tail formed before PostgreSQL sent the transactions (p99 commit → sent above read → acknowledged)'
      : "the tail formed between the relay's read and Kafka's acknowledgement (p99 read → acknowledged above commit → sent)";
  const cpu = s.cpu;
  const waits = cpu === undefined ? undefined : waitsPerSecondRun(cpu);
  const busyCores = (c: CpuReport) => `${c.machineCores.toFixed(2)} of ${cores} cores busy`;
  const causes =
    cpu !== undefined && cpu.machineCores >= 0.9 * cores
      ? [`the machine's CPU (${busyCores(cpu)}, ${((cpu.processes.find((p) => p.process === 'bench')?.cores ?? 0) + cpu.otherCores).toFixed(2)} of them the writers with their PostgreSQL backends${waits ? `; ${waits.text}` : ''})`]
      : [
          ...(cpu !== undefined && waits !== undefined && waits.longest >= 1 ? [`the wait for a core (${busyCores(cpu)}; ${waits.text})`] : []),
          ...(s.loopGapMs !== undefined && s.loopGapMs >= s.p99 / 2 ? [`the relay's main thread (held up to ${Math.round(s.loopGapMs)} ms)`] : []),
          ...(s.brokerGc !== undefined && s.brokerGc.longestMs >= s.p99 / 2 ? [`the broker's GC (paused up to ${Math.round(s.brokerGc.longestMs)} ms)`] : []),
        ];
  return `${causes.length > 0 ? `${causes.join(' and ')}; ` : ''}${where}`;
}

export function checkTargets(r: BenchResults): TargetCheck[] {
  const client = r.defaultClient;
  const cores = r.machine.cores;
  const drains = r.shapes.flatMap((s) => {
    const limit = drainLimit(r, s);
    return s.drains.filter((d) => d.client === client).map((d) => ({ s, d, limit, share: d.streamingEventsPerSecond / limit }));
  });
  const steady = r.steady.filter((s) => s.client === client);
  const cold = r.coldStarts.find((c) => c.client === client);
  const rss = [
    ...(cold ? [{ row: 'idle', mib: cold.idleRssMiB }] : []),
    ...steady.map((s) => ({ row: s.sustainedMax ? `max ${n(s.target)}/s` : `${n(s.target)}/s`, mib: s.peakRssMiB })),
    ...drains.map(({ s, d }) => ({ row: `drain ${s.name}`, mib: d.peakRssMiB })),
  ];
  const cpu = [
    ...drains.map(({ s, d }) => ({ row: `drain ${s.name}`, now: d.cpuSecondsPer1k, before: CPU_BEFORE[`drain ${s.rowsPerTxn} ${client}`] })),
    ...steady.map((s) => ({ row: s.sustainedMax ? 'max sustained' : `${n(s.target)}/s`, now: s.cpuSecondsPer1k, before: CPU_BEFORE[`steady ${s.sustainedMax ? 'max' : s.target} ${client}`] })),
  ];
  return [
    {
      target: `backlog drain ≥ ${pct(DRAIN_SHARE_TARGET)} of min(pg_recvlogical, Kafka's own producer)`,
      met: all(drains.map((x) => x.share >= DRAIN_SHARE_TARGET)),
      result: drains
        .map(({ s, d, limit, share }) => `${s.name}: ${pct(share)} (${n(d.streamingEventsPerSecond)} of ${n(limit)} events/s while streaming; ${n(d.eventsPerSecond)} from process start, ${pct(d.eventsPerSecond / limit)})${share >= DRAIN_SHARE_TARGET ? '' : `; bound: ${drainBound(d, cores, limit)}${s.profile ? `; profiled run, the relay's main thread: ${describeProfile(s.profile)}` : ''}`}`)
        .join('; '),
    },
    {
      target: `p99 commit → append ≤ ${P99_LOW_RATE_MS} ms at 1k and 5k events/s, < ${P99_MAX_RATE_MS} ms at the highest sustained rate`,
      met: all(steady.map(latencyMet)),
      // Writers that fell behind their rate (a busy machine) measured a lighter load than the target names, and a
      // relay that fell behind did not sustain it: either is said.
      result: steady
        .map((s) => {
          const short = notSustained(s);
          const met = latencyMet(s);
          const bound = met ? undefined : latencyBound(s, cores);
          return `${s.sustainedMax ? `max ${n(s.target)}/s` : `${n(s.target)}/s`}: ${s.p99} ms${s.p99Runs ? ` (runs: ${s.p99Runs.join(', ')} ms${(s.shortRuns ?? []).map((x) => `; run ${x.run} ${x.why}`).join('')})` : ''}${short === undefined ? '' : ` (${short})`}${met ? '' : latencySplit(s, cores)}${bound === undefined ? '' : `; bound: ${bound}`}`;
        })
        .join(', '),
    },
    {
      target: 'peak RSS < 150 MB (143 MiB) in every row',
      met: all(rss.map((x) => x.mib < RSS_TARGET_MIB)),
      result: rss.map((x) => `${x.row} ${Math.round(x.mib)} MiB`).join(', '),
    },
    {
      target: 'CPU s / 1k events lower than before the pipelined engine (run of 2026-11-24)',
      met: all(cpu.filter((x) => x.before !== undefined).map((x) => x.now < x.before!)),
      result: cpu.map((x) => `${x.row} ${x.now.toFixed(3)}${x.before === undefined ? '' : ` (was ${x.before.toFixed(3)})`}`).join(', '),
    },
    {
      target: `cold start < ${COLD_START_TARGET_MS} ms (spawn → streaming)`,
      met: cold ? cold.medianMs < COLD_START_TARGET_MS : undefined,
      result: `${cold ? `median ${Math.round(cold.medianMs)} ms` : 'not measured'}; \`--help\` ${Math.round(r.helpStart.medianMs)} ms${cold?.split && cold.medianMs >= COLD_START_TARGET_MS ? `; the median run: ${describeStartup(cold.split)}` : ''}`,
    },
  ];
}
