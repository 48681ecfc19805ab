import { KafkaBroker } from './kafka.js';
import { PostgresServer } from './postgres.js';
import { reapOrphanedRuns } from './processes.js';

export { KafkaBroker, ensureKafkaClassArchive, ensureKafkaJars, ensureKafkaToolsJars, DEFAULT_KAFKA_VERSION } from './kafka.js';
export { KafkaCluster, type KafkaClusterOptions, type PartitionState } from './kafka-cluster.js';
export { PostgresServer, SCRAM_ROLE } from './postgres.js';
export { startStandby } from './postgres-standby.js';
export { OTHER_POSTGRES_VERSIONS, ensurePostgresBinaries, type OtherPostgresMajor } from './postgres-binaries.js';
export { freeze, isAlive, processesMentioning, stopAllTracked, waitUntil } from './processes.js';
export { repoRoot, runDir, stackRoot } from './paths.js';

/**
 * Where the services are, as plain data: global setup hands this to test workers.
 * `pgUrl` is a superuser URL whose database part tests replace; `owned` is false when the user pointed us
 * at services of their own (then fault tests that kill servers are skipped).
 */
export interface StackInfo {
  pgUrl: string;
  brokers: string[];
  kafkaVersion: string;
  owned: { postgres: boolean; kafka: boolean };
}

export interface Stack extends StackInfo {
  /** The broker JVM's pid when the stack started it (the bench reads its CPU time). */
  kafkaPid(): number | undefined;
  /** Its GC log (see KafkaBroker.gcLog) when the stack started it. */
  kafkaGcLog(): string | undefined;
  stop(): Promise<void>;
}

/**
 * Starts PostgreSQL and Kafka side by side, or uses the ones named by OUTBOX_STACK_PG_URL (a superuser URL to a
 * server with wal_level=logical) and OUTBOX_STACK_KAFKA_BROKERS (comma-separated host:port).
 */
export async function startStack(name = 'shared'): Promise<Stack> {
  const externalPg = process.env.OUTBOX_STACK_PG_URL;
  const externalKafka = process.env.OUTBOX_STACK_KAFKA_BROKERS;
  const postgres = externalPg ? undefined : new PostgresServer({ name });
  const kafka = externalKafka ? undefined : new KafkaBroker({ name });
  const stop = async () => {
    await Promise.all([kafka?.stop(), postgres?.stop()]);
    kafka?.destroy();
    postgres?.destroy();
  };
  // Ephemeral: a run never inherits the data of an earlier one.
  kafka?.destroy();
  postgres?.destroy();
  try {
    await Promise.all([postgres?.start(), kafka?.start()]);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    pgUrl: externalPg ?? postgres!.url(),
    brokers: externalKafka ? externalKafka.split(',').map((b) => b.trim()) : kafka!.brokers,
    kafkaVersion: kafka?.version ?? 'external',
    owned: { postgres: !externalPg, kafka: !externalKafka },
    kafkaPid: () => kafka?.pid(),
    kafkaGcLog: () => kafka?.gcLog,
    stop,
  };
}

/** Reaps servers that killed runs left behind (their owner process is gone). */
export async function reapLeftovers(): Promise<void> {
  await reapOrphanedRuns();
}
