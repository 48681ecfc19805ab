import { waitUntil, type KafkaCluster } from '../../stack/index.js';
import { parseLsn } from '../../src/lsn.js';
import { settlesWithin } from '../../src/retry.js';
import { committedIds, compareDelivery, currentWalLsn, setupOutbox, slotConfirmedLsn, startWriters, type OutboxSetup, type Writers } from './outbox.js';
import { startRelay, type RelayProcess } from './relay-process.js';
import { createDatabase, readTopic, uniqueName, type ConsumedRecord, type TestDatabase } from './services.js';

/**
 * One relay under fault: its own database, slot and topic, 4 writers committing while faults are injected, and
 * the figures read back afterwards. Shared by the cluster fault test and `npm run faults` (which runs the long
 * versions outside vitest, so everything here takes its servers as arguments).
 */

export const GUARANTEES = ['at-least-once', 'exactly-once', 'at-most-once'] as const;
export type Guarantee = (typeof GUARANTEES)[number];
export const CLIENTS = ['rdkafka', 'kafkajs'] as const;
export type KafkaClientName = (typeof CLIENTS)[number];

/** What each client is run with: kafkajs is refused for exactly-once (its transactions failed the cluster test). */
export function guaranteesOf(client: KafkaClientName): readonly Guarantee[] {
  return client === 'kafkajs' ? GUARANTEES.filter((g) => g !== 'exactly-once') : GUARANTEES;
}

export interface FaultRunOptions {
  guarantee: Guarantee;
  /** Default: the relay's default client. */
  client?: KafkaClientName;
  pgUrl: string;
  brokers: string[];
  partitions?: number;
  writers?: number;
  extraArgs?: string[];
}

export interface FaultRun {
  readonly options: FaultRunOptions;
  readonly db: TestDatabase;
  readonly setup: OutboxSetup;
  readonly writers: Writers;
  /** Every relay process of the run, the current one last (a relay-kill loop starts several). */
  readonly relays: RelayProcess[];
  relay(): RelayProcess;
  /** Kills the current relay (SIGKILL) and starts a new one on the same slot. */
  restartRelay(): Promise<void>;
}

export interface FaultResult {
  label: string;
  committed: number;
  records: number;
  lost: number;
  duplicates: number;
  unexpected: number;
  /** Records whose commit LSN is below an earlier record's in the same partition (first copies only). */
  orderViolations: number;
  /** Times a relay streamed again from its confirmed position (reconnects and source restarts), over all its processes. */
  sourceRestarts: number;
  /** Set when the slot never confirmed the last write: the relay stalled or halted. */
  stalled?: string;
  missingIds: string[];
}

export function label(options: Pick<FaultRunOptions, 'guarantee' | 'client'>): string {
  return `${options.guarantee} / ${options.client ?? 'default client'}`;
}

function relayArgs(options: FaultRunOptions): string[] {
  const args = ['--delivery-guarantee', options.guarantee, '--retry-max-delay', '1s', ...(options.extraArgs ?? [])];
  if (options.client) args.push('--kafka-client', options.client);
  if (options.guarantee === 'exactly-once') args.push('--checkpoint-topic', uniqueName('checkpoints'));
  return args;
}

export async function startFaultRun(options: FaultRunOptions): Promise<FaultRun> {
  const db = await createDatabase('faults', options.pgUrl);
  const setup = await setupOutbox(db, { partitions: options.partitions ?? 6, brokers: options.brokers, extraArgs: relayArgs(options) });
  const relays = [startRelay(setup.args)];
  await relays[0]!.waitForMessage('streaming from PostgreSQL', 90_000);
  const writers = startWriters(db, options.writers ?? 4);
  return {
    options,
    db,
    setup,
    writers,
    relays,
    relay: () => relays.at(-1)!,
    async restartRelay() {
      await relays.at(-1)!.kill();
      const next = startRelay(setup.args);
      relays.push(next);
      await next.waitForMessage('streaming from PostgreSQL', 90_000);
    },
  };
}

/** Commit LSNs (header `outbox-lsn`) must not go down within a partition, counting each event's first copy only. */
export function orderViolations(records: ConsumedRecord[]): number {
  const last = new Map<number, bigint>();
  const seen = new Set<string>();
  let violations = 0;
  for (const r of records) {
    const id = r.key ?? '';
    if (seen.has(id)) continue;
    seen.add(id);
    const lsn = parseLsn(r.headers['outbox-lsn'] ?? '0/0');
    if (lsn < (last.get(r.partition) ?? 0n)) violations++;
    else last.set(r.partition, lsn);
  }
  return violations;
}

/**
 * Stops the writers, waits until the slot confirmed everything written (every committed event is then in Kafka,
 * or was given up by at-most-once), reads the topic back and compares it with the outbox table.
 */
export async function finishFaultRun(run: FaultRun, confirmTimeoutMs = 120_000): Promise<FaultResult> {
  await run.writers.stop();
  const target = await currentWalLsn(run.db);
  let stalled: string | undefined;
  await waitUntil(`${label(run.options)}: the slot to confirm everything written`, async () => (await slotConfirmedLsn(run.db, run.setup.slot)) >= target, confirmTimeoutMs, 250).catch(
    (err: Error) => {
      stalled = `${err.message}; last log lines:\n${run.relay().logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')}`;
    },
  );
  const committed = await committedIds(run.db);
  // At-most-once loses events by contract, so their count is never reached: stop the relay (it hands over what it
  // has in flight) and read the topic to its end instead of waiting out the timeout for events that cannot come.
  const atMostOnce = run.options.guarantee === 'at-most-once';
  if (atMostOnce) await stopRelay(run.relay());
  const records = await readTopic(run.setup.topic, {
    expected: atMostOnce ? undefined : committed.length,
    brokers: run.options.brokers,
    readCommitted: run.options.guarantee === 'exactly-once',
    timeoutMs: stalled ? 10_000 : 60_000,
    settleMs: 1500,
  });
  const delivery = compareDelivery(committed, records.map((r) => r.key));
  const streams = run.relays.reduce((n, relay) => n + relay.logs.filter((l) => l.msg === 'streaming from PostgreSQL').length, 0);
  return {
    label: label(run.options),
    committed: committed.length,
    records: records.length,
    lost: delivery.missing.length,
    duplicates: delivery.duplicates,
    unexpected: delivery.unexpected,
    orderViolations: orderViolations(records),
    sourceRestarts: streams - run.relays.length,
    stalled,
    missingIds: delivery.missing.slice(0, 10),
  };
}

/** Stops the run's relay (SIGTERM, then SIGKILL if it does not exit) and releases its slot and database. */
export async function closeFaultRun(run: FaultRun): Promise<void> {
  await stopRelay(run.relay());
  await run.writers.stop();
  await run.db.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active').catch(() => undefined);
  await run.db.close();
}

/** SIGTERM, then SIGKILL if the relay has not exited within 15 s. */
async function stopRelay(relay: RelayProcess): Promise<void> {
  relay.signal('SIGTERM');
  if (!(await settlesWithin(relay.exited, 15_000))) await relay.kill();
}

export function describeResult(r: FaultResult): string {
  return (
    `${r.label}: ${r.committed} committed, ${r.records} records, ${r.lost} lost, ${r.duplicates} duplicates, ${r.unexpected} unexpected, ` +
    `${r.orderViolations} order violations, ${r.sourceRestarts} source restarts${r.stalled ? ' (STALLED)' : ''}`
  );
}

/**
 * One round of the replicated-cluster fault: SIGKILL the node that leads most partitions of `topics` while the
 * writers commit, let the controller move the leaderships, keep writing on the survivors, then restart the node
 * and wait until every partition is fully replicated again. Returns the killed node id.
 */
export async function leaderKillRound(cluster: KafkaCluster, topics: string[], options: { downMs?: number } = {}): Promise<number> {
  const victim = await cluster.busiestLeader(topics);
  await cluster.kill(victim);
  await cluster.waitForFailover(topics, victim);
  await new Promise((r) => setTimeout(r, options.downMs ?? 2000));
  await cluster.restart(victim);
  await cluster.waitForIsr(topics);
  return victim;
}

/**
 * Two of the three nodes down at once, for `downMs`: the controller quorum and every partition's
 * min.insync.replicas are lost. The busiest leader is the node that stays, so its partitions keep their leader,
 * which cannot shrink the ISR without a quorum, and the others' partitions have their leader down: Kafka
 * acknowledges nothing (acks=all) until the nodes are back. Both are restarted together; returns the nodes killed.
 */
export async function majorityLossRound(cluster: KafkaCluster, topics: string[], downMs: number): Promise<number[]> {
  const stays = await cluster.busiestLeader(topics);
  const victims = cluster.nodes.map((n) => n.nodeId).filter((id) => id !== stays);
  await Promise.all(victims.map((id) => cluster.kill(id)));
  await new Promise((r) => setTimeout(r, downMs));
  await Promise.all(victims.map((id) => cluster.restart(id)));
  await cluster.waitForIsr(topics);
  return victims;
}
