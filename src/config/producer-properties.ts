import type { Compression, KafkaClient, Origin } from './types.js';
import { ConfigError, type ConfigProblems } from './load.js';
import { settingRef, type SettingValues } from './settings.js';

/** Codecs each client can write; kafkajs ships only gzip (the others need codec plugins the relay does not bundle). */
const CODECS: Record<KafkaClient, readonly Compression[]> = {
  rdkafka: ['none', 'gzip', 'snappy', 'lz4', 'zstd'],
  kafkajs: ['none', 'gzip'],
};

/**
 * Why retries (alias message.send.max.retries) is refused at any value: librdkafka honours a finite count for the
 * idempotent producer too, and a request whose retries ran out on a retriable error (a broker restarting, too few
 * in-sync replicas) fails without a fatal error while the requests behind it are delivered; the relay's re-send then
 * lands behind them. Until 2026-12-07 only 0 was refused.
 */
const UNLIMITED_RETRIES = 'the relay needs librdkafka’s unlimited internal retries, bounded by kafka.deliveryTimeout: a finite count can fail a request while the ones behind it are delivered, out of commit order';

/**
 * librdkafka properties `kafka.producer` may not set, with why. The first group would break the delivery
 * guarantees (acknowledged means replicated; retries never reorder or drop a record; one writer per slot);
 * the second has a relay setting of its own, so that one value is used by both clients and shown in `config`.
 */
const DENIED: Record<string, string> = {
  acks: 'the relay produces with acks=all: an acknowledgement must mean the record is replicated',
  'request.required.acks': 'the relay produces with acks=all: an acknowledgement must mean the record is replicated',
  'enable.idempotence': 'the relay needs the idempotent producer: it keeps order and drops no record across internal retries',
  'transactional.id': 'exactly-once sets it per slot (outbox-relay.<slot>) so that two instances fence each other',
  'enable.gapless.guarantee': 'turning it off lets librdkafka skip a failed record and deliver the next ones (a gap)',
  retries: UNLIMITED_RETRIES,
  'message.send.max.retries': UNLIMITED_RETRIES,
  'delivery.report.only.error': 'the relay confirms an event only on its successful delivery report: with reports for failures only, nothing would ever be confirmed',
  'queuing.strategy': 'the relay needs librdkafka’s first-in-first-out queue (fifo, the default): lifo sends the newest records first, out of commit order',
  partitioner: 'the relay uses the Java client’s key hashing (murmur2_random); another partitioner moves keys to other partitions and breaks per-key order across the change',
  'transaction.timeout.ms': 'set delivery.transactionTimeout',
  'compression.type': 'set kafka.compression',
  'compression.codec': 'set kafka.compression',
  'linger.ms': 'set kafka.linger',
  'queue.buffering.max.ms': 'set kafka.linger',
  'batch.size': 'set kafka.batchSize',
  'message.timeout.ms': 'set kafka.deliveryTimeout',
  'delivery.timeout.ms': 'set kafka.deliveryTimeout',
  'request.timeout.ms': 'set kafka.requestTimeout',
  'socket.timeout.ms': 'set kafka.requestTimeout',
  'client.rack': 'set kafka.clientRack',
  'client.id': 'set kafka.clientId',
  'bootstrap.servers': 'set kafka.brokers',
  'metadata.broker.list': 'set kafka.brokers',
};
const DENIED_PREFIXES: Record<string, string> = {
  'security.': 'set kafka.ssl / kafka.saslMechanism',
  'sasl.': 'set kafka.saslMechanism, kafka.saslUsername and kafka.saslPasswordFile',
  'ssl.': 'set kafka.ssl / kafka.sslCaFile',
};

/**
 * librdkafka reads `topic.<name>` as the topic property <name> (topic.queuing.strategy=lifo is queuing.strategy=lifo),
 * so the refusals match the name without it.
 */
const TOPIC_PREFIX = 'topic.';

/** Where more requests in flight could reorder a retried batch even with idempotence (Kafka allows 5). */
const MAX_IN_FLIGHT = 5;

function refusal(name: string, why: string): ConfigError {
  return new ConfigError(`kafka.producer.${name} is not allowed: ${why}`, `remove ${name} from kafka.producer (OUTBOX_RELAY_KAFKA_PRODUCER / --kafka-producer)`);
}

/**
 * The refusals, at start, of pass-through properties that would break a guarantee or duplicate a relay setting,
 * by property name.
 */
export function checkProducerProperties(properties: Record<string, string>): Map<string, ConfigError> {
  const refused = new Map<string, ConfigError>();
  for (const [name, value] of Object.entries(properties)) {
    const property = name.startsWith(TOPIC_PREFIX) ? name.slice(TOPIC_PREFIX.length) : name;
    const denied = DENIED[property] ?? Object.entries(DENIED_PREFIXES).find(([prefix]) => property.startsWith(prefix))?.[1];
    if (denied) refused.set(name, refusal(name, denied));
    else if ((property === 'max.in.flight' || property === 'max.in.flight.requests.per.connection') && !(Number.isInteger(Number(value)) && Number(value) >= 1 && Number(value) <= MAX_IN_FLIGHT)) {
      // 0, a fraction or a word said "more than 5", which sent the reader looking for a 6 that was not there.
      const why = Number(value) > MAX_IN_FLIGHT ? `more than ${MAX_IN_FLIGHT} requests in flight can reorder a retried batch` : `"${value}" is not a number of requests in flight`;
      refused.set(name, refusal(name, `${why}; use 1 to ${MAX_IN_FLIGHT}`));
    }
  }
  return refused;
}

/**
 * Settings the selected client cannot honour are refused at start, naming the client and the setting; each
 * refusal goes to `problems`. `rdkafkaOnly`: the librdkafka-only settings with a default (kafka.linger,
 * kafka.batchSize), refused only when the operator gave them: kafkajs would ignore them without a word. Each rule
 * reads only its settings, so that an invalid one skips only the rules that read it (readValid).
 */
export function checkClientSupport(v: SettingValues, origins: Record<string, Origin>, rdkafkaOnly: readonly string[], problems: ConfigProblems): void {
  const refuse = (refusal: (client: KafkaClient) => ConfigError | undefined) =>
    problems.check(() => {
      const client = v['kafka.client'];
      const refused = client === 'rdkafka' ? undefined : refusal(client);
      if (refused) throw refused;
    });
  // Measured on a 3-broker cluster (test/integration/cluster.leader-failover.test.ts): one partition-leader kill
  // under 4 writers lost 51 and duplicated 70 of 10 177 events for a read_committed consumer with kafkajs
  // transactions; librdkafka's lost and duplicated none.
  refuse((client) =>
    v['delivery.guarantee'] === 'exactly-once'
      ? new ConfigError(
          `delivery.guarantee exactly-once is not available with kafka.client ${client}: its transactions lose and duplicate events when a partition leader changes in a replicated cluster`,
          `use ${settingRef('kafka.client')} rdkafka (the default) for exactly-once, or ${settingRef('delivery.guarantee')} at-least-once with kafkajs`,
        )
      : undefined,
  );
  refuse((client) => {
    const compression = v['kafka.compression'];
    if (CODECS[client].includes(compression)) return undefined;
    return new ConfigError(`kafka.compression ${compression} is not supported by kafka.client ${client} (it supports ${CODECS[client].join(', ')})`, `use ${settingRef('kafka.client')} rdkafka, or ${settingRef('kafka.compression')} ${CODECS[client].filter((c) => c !== 'none').join('/')}`);
  });
  refuse((client) =>
    Object.keys(v['kafka.producer'] ?? {}).length > 0 ? new ConfigError(`kafka.producer passes librdkafka properties, which kafka.client ${client} does not read`, `use ${settingRef('kafka.client')} rdkafka, or remove ${settingRef('kafka.producer')}`) : undefined,
  );
  refuse((client) =>
    v['kafka.clientRack'] !== undefined ? new ConfigError(`kafka.clientRack is not supported by kafka.client ${client}`, `use ${settingRef('kafka.client')} rdkafka, or remove ${settingRef('kafka.clientRack')}`) : undefined,
  );
  refuse((client) => {
    // Read through `v`, so that one given but invalid is left to its own refusal.
    const given = rdkafkaOnly.filter((key) => v[key as keyof SettingValues] !== undefined && origins[key] !== 'default');
    if (given.length === 0) return undefined;
    const names = given.join(' and ');
    return new ConfigError(`${names} ${given.length > 1 ? 'are librdkafka settings' : 'is a librdkafka setting'}, which kafka.client ${client} does not read`, `use ${settingRef('kafka.client')} rdkafka, or remove ${given.map(settingRef).join(' and ')} (with kafkajs, delivery.coalesce gathers events into fewer requests)`);
  });
}
