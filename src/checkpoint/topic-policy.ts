import type { ConfigResourceTypes } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaSettings } from '../config/types.js';
import { formatDuration, formatSize } from '../config/units.js';
import { RelayError } from '../errors.js';
import { createKafkaClient, type KafkaJsBounds } from '../sink/kafka-sink.js';
import { bootstrapServers } from '../sink/topic-check.js';

/** The topic settings that decide whether a checkpoint topic keeps each slot's last checkpoint. */
const POLICY_CONFIGS = ['cleanup.policy', 'retention.ms', 'retention.bytes'];

/**
 * Why a checkpoint topic, as configured, may drop a slot's last checkpoint or grow without bound; undefined when
 * it keeps one record per slot for good (cleanup.policy=compact, as the relay creates it). A topic created by
 * hand with Kafka's default policy (delete) still works at first: it is never compacted, so every start reads
 * every checkpoint of its retention (up to one a second per slot), and once a slot's last checkpoint is older than
 * retention.ms (a relay stopped that long) or falls out of retention.bytes, the next start has none. It then
 * starts at the slot's position: with a replay window, that re-sends the window's events, under exactly-once too.
 */
export function checkpointTopicProblem(topic: string, config: Record<string, string | undefined>, bootstrap: KafkaSettings['brokers']): RelayError | undefined {
  const policies = (config['cleanup.policy'] ?? 'delete').split(',').map((p) => p.trim());
  const compacted = policies.includes('compact');
  const deletes = policies.includes('delete');
  const ms = Number(config['retention.ms'] ?? -1);
  const bytes = Number(config['retention.bytes'] ?? -1);
  const deleting: string[] = [];
  if (deletes && ms >= 0) deleting.push(`older than retention.ms (${formatDuration(ms)})`);
  if (deletes && bytes >= 0) deleting.push(`beyond retention.bytes (${formatSize(bytes)}) per partition`);
  if (compacted && deleting.length === 0) return undefined;
  const effects = [
    ...(compacted ? [] : ['it is never compacted, so every start reads every checkpoint it holds (up to one a second per slot)']),
    ...(deleting.length > 0
      ? [`Kafka deletes checkpoints ${deleting.join(' or ')}, a slot's last one included: a start without it begins at the slot's position, and with a replay window sends the window's events again (under exactly-once too)`]
      : []),
  ];
  return new RelayError('CHECKPOINT_TOPIC_POLICY', `the checkpoint topic "${topic}" has cleanup.policy=${policies.join(',')}: ${effects.join('; ')}`, {
    hint: `make it compacted, as the relay creates it: kafka-configs.sh --bootstrap-server ${bootstrapServers(bootstrap)} --alter --entity-type topics --entity-name ${topic} --add-config cleanup.policy=compact`,
    details: { topic, ...config },
  });
}

/** Replicas a checkpoint topic should have: Kafka's own internal topics' default, or every broker of a smaller cluster. */
const WANTED_REPLICAS = 3;

/**
 * Why a checkpoint topic's replicas leave the relay's position on too few brokers; undefined when it has
 * min(3, brokers). The relay creates it with the brokers' default.replication.factor, 1 unless a cluster sets it:
 * that one broker down, exactly-once commits nothing (every Kafka transaction writes a checkpoint) and no start
 * reads the checkpoint; its disk lost, the next start begins at the slot's position and re-sends the replay window.
 */
export function checkpointTopicReplication(topic: string, replicas: number, brokers: number, bootstrap: KafkaSettings['brokers']): RelayError | undefined {
  const wanted = Math.min(WANTED_REPLICAS, brokers);
  if (replicas >= wanted) return undefined;
  return new RelayError(
    'CHECKPOINT_TOPIC_POLICY',
    `the checkpoint topic "${topic}" has ${replicas} replica(s) on a cluster of ${brokers} brokers: while one broker that holds it is down, exactly-once commits nothing and no start reads the checkpoint, and with its disk the position is lost (a start then begins at the slot's and re-sends the replay window)`,
    {
      hint: `give it ${wanted} replicas: kafka-reassign-partitions.sh --bootstrap-server ${bootstrapServers(bootstrap)} --execute --reassignment-json-file <file naming ${wanted} brokers for ${topic} partition 0>; or, before the relay first runs, create it with kafka-topics.sh --bootstrap-server ${bootstrapServers(bootstrap)} --create --topic ${topic} --partitions 1 --replication-factor ${wanted} --config cleanup.policy=compact (or set the brokers' default.replication.factor)`,
      details: { topic, replicas, brokers },
    },
  );
}

/** One warning for several problems of the topic (its policy, its replicas): both messages, both fixes. */
function together(problems: (RelayError | undefined)[]): RelayError | undefined {
  const found = problems.filter((p): p is RelayError => p !== undefined);
  if (found.length <= 1) return found[0];
  return new RelayError('CHECKPOINT_TOPIC_POLICY', found.map((p) => p.message).join('; and '), {
    hint: found.map((p) => p.hint).join('; and '),
    details: Object.assign({}, ...found.map((p) => p.details)) as Record<string, unknown>,
  });
}

/**
 * A broker that does not answer holds a kafkajs request, and its connection keeps the process up, until the
 * request times out: kafkajs' disconnect waits for it. So the check's requests are short and not retried (one
 * with the relay's own bounds, a broker frozen as the relay stopped, delayed the exit by 3 s).
 */
const CHECK_BOUNDS: KafkaJsBounds = { connectionTimeoutMs: 2000, requestTimeoutMs: 3000, retries: 0 };

/** ConfigResourceTypes.TOPIC: importing the enum's value would load kafkajs at every start (src/lazy-require.ts). */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;

/**
 * The checkpoint topic's problems: its replicas (checkpointTopicReplication, from metadata: DESCRIBE) and its
 * policy (checkpointTopicProblem, read with DescribeConfigs); undefined when it has neither or does not exist yet
 * (the relay creates it compacted). Through kafkajs whatever kafka.client says: librdkafka's binding has no
 * DescribeConfigs. Without DESCRIBE_CONFIGS only the replicas are checked (a refusal without a replica problem
 * is the caller's to report).
 */
export async function readTopicPolicy(config: KafkaSettings, logger: Logger, topic: string): Promise<RelayError | undefined> {
  const admin = createKafkaClient(config, logger, '-checkpoint', CHECK_BOUNDS).admin();
  try {
    await admin.connect();
    const [{ topics }, { brokers }] = await Promise.all([admin.fetchTopicMetadata({ topics: [topic] }), admin.describeCluster()]);
    const replication = checkpointTopicReplication(topic, Math.min(...(topics[0]?.partitions ?? []).map((p) => p.replicas.length)), brokers.length, config.brokers);
    let policy: RelayError | undefined;
    try {
      const { resources } = await admin.describeConfigs({ resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: POLICY_CONFIGS }], includeSynonyms: false });
      policy = checkpointTopicProblem(topic, Object.fromEntries((resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue])), config.brokers);
    } catch (err) {
      if (replication === undefined) throw err;
    }
    return together([policy, replication]);
  } catch (err) {
    if ((err as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION') return undefined;
    throw err;
  } finally {
    await admin.disconnect();
  }
}
