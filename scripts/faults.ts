import { availableParallelism, loadavg } from 'node:os';
import { KafkaBroker, KafkaCluster, PostgresServer, reapLeftovers, stopAllTracked } from '../stack/index.js';
import {
  CLIENTS,
  closeFaultRun,
  describeResult,
  finishFaultRun,
  GUARANTEES,
  guaranteesOf,
  leaderKillRound,
  majorityLossRound,
  startFaultRun,
  type FaultResult,
  type FaultRun,
  type Guarantee,
} from '../test/support/fault-run.js';
import { slotActivePid } from '../test/support/outbox.js';
import { killAllRelays } from '../test/support/relay-process.js';
import { uniqueName } from '../test/support/services.js';

/**
 * `npm run faults`: the long fault loops behind the short versions in the suite (docs/delivery-guarantees.md).
 *
 *  1. Single broker, per guarantee (default client): 4 writers, 20 relay SIGKILLs at random moments, one
 *     pg_terminate_backend of the walsender and one 60 s broker SIGSTOP during the loop.
 *  2. 3-broker cluster (RF 3, min.insync.replicas 2), per client, the three guarantees side by side: the node leading
 *     most partitions SIGKILLed and restarted 3 times under 4 writers each, then the two other nodes SIGKILLed
 *     together for 45 s (the quorum and min.insync.replicas lost, longer than kafka.deliveryTimeout) and restarted.
 *
 * Prints lost / duplicates / source restarts per run; exits 1 if at-least-once or exactly-once lost anything or broke commit order,
 * exactly-once or at-most-once duplicated anything, or a run stalled. Every server it starts is stopped, also on Ctrl-C.
 * FAULTS_RELAY_KILLS, FAULTS_LEADER_KILLS, FAULTS_BROKER_PAUSE_MS and FAULTS_MAJORITY_LOSS_MS (0: none) shorten a
 * trial run; FAULTS_PHASE=broker or FAULTS_PHASE=cluster runs one of the two phases.
 */
const RELAY_KILLS = Number(process.env.FAULTS_RELAY_KILLS ?? 20);
const LEADER_KILLS = Number(process.env.FAULTS_LEADER_KILLS ?? 3);
const BROKER_PAUSE_MS = Number(process.env.FAULTS_BROKER_PAUSE_MS ?? 60_000);
const MAJORITY_LOSS_MS = Number(process.env.FAULTS_MAJORITY_LOSS_MS ?? 45_000);
const PHASE = process.env.FAULTS_PHASE ?? 'all';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const randomMs = (min: number, max: number) => min + Math.floor(Math.random() * (max - min));

function log(line: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
}

/** The figures depend on how busy the machine is: print its load with them. */
function logLoad(): void {
  log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${availableParallelism()} cores`);
}

/** SIGSTOP of the broker for `ms` while the relay streams and the writers commit; SIGCONT whatever happens. */
async function pauseBroker(broker: KafkaBroker, ms: number): Promise<void> {
  const pid = broker.pid();
  if (pid === undefined) throw new Error('the broker is not running');
  process.kill(pid, 'SIGSTOP');
  log(`  broker SIGSTOP for ${ms / 1000} s`);
  try {
    await sleep(ms);
  } finally {
    process.kill(pid, 'SIGCONT');
    log('  broker SIGCONT');
  }
}

async function terminateWalsender(run: FaultRun): Promise<void> {
  const pid = await slotActivePid(run.db, run.setup.slot);
  if (pid === null) return log('  pg_terminate_backend: no walsender on the slot right now (the relay is reconnecting)');
  await run.db.query('SELECT pg_terminate_backend($1)', [pid]);
  log(`  pg_terminate_backend(${pid}) of the walsender`);
}

/** One guarantee on the single broker: relay SIGKILLs at random moments, with the two other faults in between. */
async function relayKillLoop(guarantee: Guarantee, postgres: PostgresServer, broker: KafkaBroker): Promise<FaultResult> {
  const run = await startFaultRun({ guarantee, pgUrl: postgres.url(), brokers: broker.brokers, partitions: 3 });
  try {
    for (let kill = 1; kill <= RELAY_KILLS; kill++) {
      await sleep(randomMs(300, 3000));
      if (kill === Math.ceil(RELAY_KILLS / 3)) {
        await terminateWalsender(run);
        await sleep(randomMs(300, 2000));
      }
      if (kill === Math.ceil((2 * RELAY_KILLS) / 3)) await pauseBroker(broker, BROKER_PAUSE_MS);
      await run.restartRelay();
      if (kill % 5 === 0) log(`  ${guarantee}: ${kill} relay SIGKILLs`);
    }
    const result = await finishFaultRun(run, 300_000);
    log(`single broker, ${RELAY_KILLS} relay SIGKILLs + walsender terminated + broker SIGSTOP ${BROKER_PAUSE_MS / 1000} s: ${describeResult(result)}`);
    return result;
  } finally {
    await closeFaultRun(run);
  }
}

/** The three guarantees side by side on the cluster, one client, sharing the leader kills. */
async function leaderKillLoop(client: (typeof CLIENTS)[number], postgres: PostgresServer, cluster: KafkaCluster): Promise<FaultResult[]> {
  const runs = await Promise.all(guaranteesOf(client).map((guarantee) => startFaultRun({ guarantee, client, pgUrl: postgres.url(), brokers: cluster.brokers })));
  try {
    for (let round = 1; round <= LEADER_KILLS; round++) {
      await sleep(randomMs(1000, 4000));
      const node = await leaderKillRound(cluster, runs.map((r) => r.setup.topic));
      log(`  ${client}: leader node ${node} SIGKILLed and restarted (round ${round})`);
    }
    if (MAJORITY_LOSS_MS > 0) {
      await sleep(randomMs(1000, 4000));
      const nodes = await majorityLossRound(cluster, runs.map((r) => r.setup.topic), MAJORITY_LOSS_MS);
      log(`  ${client}: nodes ${nodes.join(' and ')} SIGKILLed together for ${MAJORITY_LOSS_MS / 1000} s and restarted`);
    }
    const faults = `${LEADER_KILLS} leader SIGKILL+restart${MAJORITY_LOSS_MS > 0 ? `, 2 of 3 nodes down ${MAJORITY_LOSS_MS / 1000} s` : ''}`;
    const results = await Promise.all(runs.map((run) => finishFaultRun(run, 300_000)));
    for (const result of results) log(`3-broker cluster, ${faults}: ${describeResult(result)}`);
    return results;
  } finally {
    await Promise.all(runs.map(closeFaultRun));
  }
}

function failures(result: FaultResult): string[] {
  const found: string[] = [];
  const checked = !result.label.startsWith('at-most-once');
  if (result.stalled) found.push(`stalled: ${result.stalled}`);
  if (checked && result.lost > 0) found.push(`${result.lost} lost (e.g. ${result.missingIds.join(', ')})`);
  if (!result.label.startsWith('at-least-once') && result.duplicates > 0) found.push(`${result.duplicates} duplicates`);
  if (result.unexpected > 0) found.push(`${result.unexpected} unexpected records`);
  if (checked && result.orderViolations > 0) found.push(`${result.orderViolations} records ahead of an earlier transaction in their partition`);
  return found.map((f) => `${result.label}: ${f}`);
}

const postgres = new PostgresServer({ name: uniqueName('faults'), settings: { wal_sender_timeout: '10s' } });
const broker = new KafkaBroker({ name: uniqueName('faults') });
const cluster = new KafkaCluster({ name: uniqueName('faults-cluster') });

async function shutdown(): Promise<void> {
  await killAllRelays();
  await Promise.allSettled([postgres.stop(), broker.stop(), cluster.stop()]);
  await stopAllTracked();
  postgres.destroy();
  broker.destroy();
  cluster.destroy();
}

process.once('SIGINT', () => void shutdown().then(() => process.exit(130)));
process.once('SIGTERM', () => void shutdown().then(() => process.exit(143)));

const results: FaultResult[] = [];
try {
  await reapLeftovers();
  logLoad();
  log('starting PostgreSQL and a single broker');
  await Promise.all([postgres.start(), PHASE === 'cluster' ? undefined : broker.start()]);
  if (PHASE !== 'cluster') for (const guarantee of GUARANTEES) results.push(await relayKillLoop(guarantee, postgres, broker));
  await broker.stop();
  if (PHASE !== 'broker') {
    log('starting the 3-broker cluster');
    await cluster.start();
    for (const client of CLIENTS) results.push(...(await leaderKillLoop(client, postgres, cluster)));
  }
} finally {
  await shutdown();
  logLoad();
}

console.log('\nsummary:');
for (const result of results) console.log(`  ${describeResult(result)}`);
const failed = results.flatMap(failures);
if (failed.length > 0) {
  console.error(`\n${failed.length} failure(s):\n  ${failed.join('\n  ')}`);
  process.exit(1);
}
console.log('\nno loss and commit order kept under at-least-once and exactly-once, no duplicates under exactly-once and at-most-once');
