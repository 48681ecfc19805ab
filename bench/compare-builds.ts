import { loadavg } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { repoRoot, startStack } from '../stack/index.js';
import { cpuShares } from './cpu.js';
import { measureDrain } from './drain.js';
import { BenchDatabase, TOPIC, createTopic } from './fixture.js';
import { describeMachine } from './machine.js';
import type { KafkaClient } from './relay-process.js';
import { measureSteady } from './steady.js';
import { windowShare } from './targets.js';

/**
 * `npm run bench:compare`: the backlog-drain rows of `npm run bench` (single-row and 100-row transactions) and,
 * with BENCH_LATENCY_SECONDS, a latency row (BENCH_LATENCY_LEVEL `events/s:rows per transaction:writers`, default
 * the 1k events/s row, `1000:1:2`; the highest sustained rate of a run was `29200:10:4`), for each of several
 * builds, printed and not written to docs/benchmarks.md. BENCH_BUILDS lists relay entry scripts (default
 * dist/outbox-relay.js; relative paths are from the repository) and BENCH_REPEATS how often each runs; the builds
 * take turns, so load that comes and goes on a shared machine hits each alike. Compare CPU seconds per 1k events:
 * events/s moves with that load. BENCH_NODE_ARGS adds node flags to the relay of every row (e.g. `--cpu-prof
 * --cpu-prof-dir=/tmp/prof`, or `--trace-gc`, whose lines go to the relay's stdout: BENCH_RELAY_STDOUT).
 */
const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 0);
const [LATENCY_RATE, LATENCY_ROWS, LATENCY_WRITERS] = (process.env.BENCH_LATENCY_LEVEL ?? '1000:1:2').split(':').map(Number) as [number, number, number];
const CLIENT = (process.env.BENCH_CLIENT ?? 'rdkafka') as KafkaClient;
const BUILDS = (process.env.BENCH_BUILDS ?? 'dist/outbox-relay.js').split(',');
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
const INSERT_CONNECTIONS = 2;

const log = (msg: string) => console.log(`[compare ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const entryOf = (build: string) => (isAbsolute(build) ? build : join(repoRoot, build));
/** Each build once per repeat, in turns. */
const turns = () => Array.from({ length: REPEATS }, (_, r) => BUILDS.map((build, b) => ({ build, slot: `cmp_${r}_${b}` }))).flat();

const stack = await startStack('bench-compare');
const db = await BenchDatabase.create(stack.pgUrl, 'bench_compare');
try {
  const machine = describeMachine(stack.kafkaVersion, process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin');
  log(`${machine.cores} cores, ${machine.cpu}; Kafka ${machine.kafka}; node ${machine.node}; relay with ${machine.allocator}; ${EVENTS} events, ${REPEATS} runs per build, client ${CLIENT}`);
  for (const rowsPerTxn of [1, 100]) {
    await createTopic(stack.brokers, TOPIC);
    const runs = turns();
    for (const run of runs) await db.createSlot(run.slot);
    const insertMs = await db.insertBacklog(EVENTS, rowsPerTxn, INSERT_CONNECTIONS);
    const endLsn = await db.walLsn();
    log(`${rowsPerTxn}-row transactions: ${EVENTS} events inserted in ${(insertMs / 1000).toFixed(1)} s`);
    for (const run of runs) {
      const load = loadavg()[0]!;
      const d = await measureDrain(db, stack.brokers, CLIENT, run.slot, endLsn, EVENTS, stack.kafkaPid(), NODE_ARGS, entryOf(run.build));
      log(`drain ${rowsPerTxn}-row ${run.build}: ${d.cpuSecondsPer1k.toFixed(4)} CPU s/1k events, ${Math.round(d.eventsPerSecond)} events/s (${Math.round(d.streamingEventsPerSecond)} while streaming), peak RSS ${Math.round(d.peakRssMiB)} MiB, window full ${windowShare(d.windowFullShare)}; load ${load.toFixed(2)}; ${cpuShares(d.cpu, machine.cores)}`);
      await db.dropSlot(run.slot);
    }
    await db.truncate();
  }
  if (LATENCY_SECONDS > 0) {
    await createTopic(stack.brokers, TOPIC);
    for (const run of turns()) {
      await db.createSlot(run.slot);
      const load = loadavg()[0]!;
      const [r] = await measureSteady(db, stack.brokers, TOPIC, CLIENT, run.slot, [{ rate: LATENCY_RATE, rowsPerTxn: LATENCY_ROWS, connections: LATENCY_WRITERS }], LATENCY_SECONDS, { pid: stack.kafkaPid(), gcLog: stack.kafkaGcLog() }, entryOf(run.build), NODE_ARGS);
      log(`${LATENCY_RATE} events/s ${run.build}: ${Math.round(r!.achieved)} written; commit→append p50 ${r!.p50} ms, p99 ${r!.p99} ms (${r!.count} samples), commit → sent p99 ${r!.sourceP99?.toFixed(1)} ms, read → acknowledged p99 ${r!.relayP99?.toFixed(1)} ms, produce p99 ${r!.produceP99?.toFixed(1)} ms, longest event-loop gap ${r!.loopGapMs?.toFixed(0)} ms, broker's longest GC pause ${r!.brokerGc?.longestMs.toFixed(0)} ms, window full ${windowShare(r!.windowFullShare)}; ${r!.cpuSecondsPer1k.toFixed(4)} CPU s/1k events; load ${load.toFixed(2)}${r!.cpu ? `; ${cpuShares(r!.cpu, machine.cores)}` : ''}`);
      await db.dropSlot(run.slot);
    }
  }
} finally {
  await db.close();
  await stack.stop();
}
