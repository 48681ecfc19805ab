import type { KafkaSettings } from '../config/types.js';
import { RelayError, errorMessage } from '../errors.js';
import { aclGrant } from './acl-grant.js';

/**
 * librdkafka error codes (rd_kafka_resp_err_t) that no retry can fix, by the RelayError they mean. Not INVALID_MSG
 * (2, Kafka's CORRUPT_MESSAGE): see corruptRequest.
 */
const RECORD_ERRORS = new Map<number, 'RECORD_TOO_LARGE' | 'RECORD_INVALID' | 'TOPIC_NOT_FOUND' | 'TOPIC_INVALID'>([
  [10, 'RECORD_TOO_LARGE'], // MSG_SIZE_TOO_LARGE, also raised locally above message.max.bytes
  [18, 'RECORD_TOO_LARGE'], // RECORD_LIST_TOO_LARGE
  [4, 'RECORD_TOO_LARGE'], // INVALID_MSG_SIZE
  [87, 'RECORD_INVALID'], // INVALID_RECORD
  [44, 'RECORD_INVALID'], // POLICY_VIOLATION
  [32, 'RECORD_INVALID'], // INVALID_TIMESTAMP: the event time lies outside the topic's message.timestamp.* bounds
  [17, 'TOPIC_INVALID'], // TOPIC_EXCEPTION
  [3, 'TOPIC_NOT_FOUND'], // UNKNOWN_TOPIC_OR_PART
  [-188, 'TOPIC_NOT_FOUND'], // _UNKNOWN_TOPIC (local)
  // _UNKNOWN_PARTITION (local): the relay names no partition (librdkafka's partitioner picks one), so the topic's
  // partitions are gone from the metadata: seen for a topic deleted under the relay, where it had been known.
  [-190, 'TOPIC_NOT_FOUND'],
]);
/** Kafka's CORRUPT_MESSAGE, librdkafka's ERR_INVALID_MSG ("Broker: Invalid message"). */
const CORRUPT_MESSAGE = 2;

/**
 * A produce request the broker found corrupt (CORRUPT_MESSAGE: a record batch whose CRC does not match its bytes, or
 * whose framing is broken). No record's content causes it: the client computes the CRC over whatever bytes it sends,
 * and a record the broker's checks refuse is INVALID_RECORD (87) since Kafka 2.4 (KIP-467; before, a keyless record
 * for a compacted topic came back as CORRUPT_MESSAGE, and the relay gives every record a key). So the bytes changed
 * on their way (network, a proxy, a broker's memory): the Java client (CorruptRecordException is a
 * RetriableException) and librdkafka (rd_kafka_err_action: retry, not persisted) send the request again. Classed as
 * a record error, the relay isolated the records and, once retry.recordMax* were spent, dead-lettered (or halted
 * on) an event nothing was wrong with; under a path that corrupts every request, every event. An outage instead:
 * the request is sent again, encoded anew, with backoff until retry.maxDuration.
 */
export function corruptRequest(message: string, cause: unknown, kafkaError: string | number): RelayError {
  return new RelayError('KAFKA_UNAVAILABLE', `Kafka found the produce request corrupt: ${message}`, {
    cause,
    retriable: true,
    details: { kafkaError },
    hint: 'the request\'s bytes changed between the relay and the broker\'s log (its CRC did not match): it is sent again; if it keeps failing, check what lies on the path to the brokers (a proxy or TLS terminator rewriting traffic, a faulty network card) and the broker log for "Record is corrupt" (a broker\'s memory or disk)',
  });
}

/** The fix for INVALID_TIMESTAMP (both clients). */
export const INVALID_TIMESTAMP_HINT = 'the record timestamp (the mapping\'s event-time column) lies outside the topic\'s message.timestamp.before.max.ms / message.timestamp.after.max.ms (Kafka 4: at most 1 h ahead by default): fix the value, widen those topic settings, or use message.timestamp.type=LogAppendTime';
/** TOPIC_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED, SASL_AUTHENTICATION_FAILED, _AUTHENTICATION. */
const AUTH_ERRORS = new Set([29, 31, 53, 58, -169]);
export const TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53;
/**
 * CLUSTER_AUTHORIZATION_FAILED as the producer's fatal error: InitProducerId refused (librdkafka makes it fatal,
 * rd_kafka_idemp_check_error). The principal has neither IdempotentWrite on the cluster nor, from Kafka 2.8
 * (KIP-679), WRITE on any topic; its credentials were accepted.
 */
export const CLUSTER_AUTHORIZATION_FAILED = 31;

/**
 * The fix for a producer id refused (CLUSTER_AUTHORIZATION_FAILED): every producer of the relay is idempotent, the
 * event producer and the checkpoint producer alike; `topics` names the topics that producer writes.
 */
export function producerIdRefusedFix(topics: string, brokers: KafkaSettings['brokers']): string {
  return `grant the relay's principal IdempotentWrite on the cluster (${aclGrant(brokers, ['IdempotentWrite'], '--cluster')}), which brokers before 2.8 require; from 2.8 WRITE on any topic is enough, so there the principal may write to no topic: grant WRITE and DESCRIBE on ${topics} (docs/security.md)`;
}

export interface RdKafkaLikeError {
  code?: number;
  /** Transactional producer only (KafkaJS-compatible API): the producer is unusable and must be replaced. */
  fatal?: boolean;
  /** The native API's name for `fatal` (error events and errors it throws). */
  isFatal?: boolean;
  /** Transactional producer only: the transaction must be aborted, the producer stays usable. */
  abortable?: boolean;
  /** The failed call may be repeated as is (e.g. a commit that timed out). */
  retriable?: boolean;
}

/** ERR__FATAL: the idempotent producer hit an error it cannot recover from (e.g. a broken sequence); every later produce fails with it. */
const FATAL = -150;

/**
 * ERR__UNSUPPORTED_FEATURE: no connected broker supports the idempotent producer (or, for a transactional one,
 * transactions), as on Kafka before 0.11 or a Kafka-compatible service without them; fatal in librdkafka.
 */
export const UNSUPPORTED_FEATURE = -165;

/** ERR__PURGE_QUEUE: the record was still queued when its producer's queue was purged (an abort, a fatal error). */
const PURGED = -152;

/**
 * A record that failed because its producer did, without saying why: ERR__FATAL (the producer had become unusable)
 * or ERR__PURGE_QUEUE (librdkafka purges the queue when a producer becomes unusable, and when a transaction aborts).
 */
export function failedWithoutCause(err: unknown): boolean {
  const code = (err as RdKafkaLikeError | undefined)?.code;
  return code === FATAL || code === PURGED;
}

/** The producer is unusable and must be replaced. */
export function isFatalRdKafkaError(err: unknown): boolean {
  const e = err as RdKafkaLikeError | undefined;
  return e?.code === FATAL || e?.isFatal === true || e?.fatal === true;
}

/** A code no retry can fix (the record or its topic is at fault). */
export function isRecordErrorCode(err: unknown): boolean {
  return RECORD_ERRORS.has((err as RdKafkaLikeError | undefined)?.code ?? 0);
}

/** TOPIC_AUTHORIZATION_FAILED: permanent for a produce request in librdkafka (rd_kafka_handle_Produce_error). */
const TOPIC_AUTHORIZATION_FAILED = 29;

/**
 * A delivery report's error after which the idempotent producer is dead under enable.gapless.guarantee: a request
 * the broker refused for good (a record error, or a topic's ACL) raises its fatal error, and every later record of
 * that producer fails. Retriable errors never reach a report: the plain sink retries without a bound.
 */
export function failsProducer(err: unknown): boolean {
  return isRecordErrorCode(err) || (err as RdKafkaLikeError | undefined)?.code === TOPIC_AUTHORIZATION_FAILED;
}

export function isUnknownTopic(err: unknown): boolean {
  return RECORD_ERRORS.get((err as RdKafkaLikeError).code ?? 0) === 'TOPIC_NOT_FOUND';
}

/**
 * The error of a code librdkafka returned from a produce call (the patched addon's batch produce returns the code,
 * where the binding's produce() throws an error carrying it), named from the module's table of codes.
 */
export function producerRefusal(codes: Record<string, number>): (code: number) => Error & RdKafkaLikeError {
  const names = new Map(Object.entries(codes).map(([name, code]) => [code, name]));
  return (code) => Object.assign(new Error(`librdkafka refused the record: ${names.get(code) ?? 'unknown error'} (${code})`), { code });
}

/**
 * How librdkafka words a property it refuses (rdkafka_conf.c: an unknown name, a value of the wrong type, out of
 * its range or unsupported in this build) and a combination it refuses when the client is created
 * (rd_kafka_conf_finalize: its messages start with the property's name in backquotes).
 */
const LIBRDKAFKA_CONFIG_ERROR =
  /^(No such configuration property|Invalid value|Unsupported value|Expected bool value|Configuration property "[^"]+" (value .* is outside allowed range|not supported)|Internal property|`[a-z.]+` )/;

/** The same classes as classifyKafkaError (kafkajs), from librdkafka's numeric codes. */
export function classifyRdKafkaError(err: unknown): RelayError {
  if (err instanceof RelayError) return err;
  const code = (err as RdKafkaLikeError).code ?? 0;
  const message = errorMessage(err);
  // Thrown by the client's constructor, as a plain Error: retried as an outage it held the start for
  // retry.maxDuration. The relay's own properties are validated at load; so it is one of kafka.producer's.
  if (LIBRDKAFKA_CONFIG_ERROR.test(message)) {
    return new RelayError('CONFIG_INVALID', `librdkafka refused a producer property: ${message}`, {
      cause: err,
      hint: 'fix or remove it in kafka.producer (flag --kafka-producer, env OUTBOX_RELAY_KAFKA_PRODUCER, or kafka.producer in the config file); librdkafka names a property by its canonical name, so an alias you set may appear under another',
    });
  }
  const record = RECORD_ERRORS.get(code);
  if (record) return new RelayError(record, `Kafka rejected the record: ${message}`, { cause: err, details: { kafkaError: code }, ...(code === 32 ? { hint: INVALID_TIMESTAMP_HINT } : {}) });
  if (code === CORRUPT_MESSAGE) return corruptRequest(message, err, code);
  if (AUTH_ERRORS.has(code)) {
    return new RelayError('KAFKA_AUTH', `Kafka refused access: ${message}`, {
      cause: err,
      retriable: true,
      details: { kafkaError: code },
      // The transactional id's refusal gets its fix where the slot is known (transactionalIdRefused).
      hint: 'check kafka.saslMechanism/username/password and the ACLs of the relay principal (WRITE and DESCRIBE on the topics; IDEMPOTENT_WRITE on the cluster with brokers before 2.8; docs/security.md lists them all)',
    });
  }
  return new RelayError('KAFKA_UNAVAILABLE', `Kafka produce failed: ${message}`, { cause: err, retriable: true, details: { kafkaError: code } });
}

/**
 * The error of a send whose producer became unusable, from the producer's fatal error event, which names the cause
 * (the patched addon's: change 7 of scripts/patch-kafka-client.mjs); its records fail only as purged or fatal.
 * Brokers without the idempotent producer end delivery (no retry gets past them); a refused producer id is an
 * access problem; any other cause is retried with a new producer, and never as the record's fault: records
 * purged for another record's refusal are sent again, not isolated.
 */
export function lostProducerError(fatal: RdKafkaLikeError & { message: string }, brokers: KafkaSettings['brokers']): RelayError {
  if (fatal.code === UNSUPPORTED_FEATURE) {
    return new RelayError('CONFIG_INVALID', `the brokers do not support the idempotent producer the relay needs: ${fatal.message}`, {
      cause: fatal,
      hint: 'the relay produces only with the idempotent producer (acks=all, in order across retries), in every delivery.guarantee: point kafka.brokers at Apache Kafka 0.11 or later, or a Kafka-compatible service with idempotent producers',
    });
  }
  if (fatal.code === CLUSTER_AUTHORIZATION_FAILED) {
    return new RelayError('KAFKA_AUTH', `the brokers refused the idempotent producer an id: ${fatal.message}`, {
      cause: fatal,
      retriable: true,
      details: { kafkaError: fatal.code },
      hint: `${producerIdRefusedFix('the event topics', brokers)}. A grant ends it: the relay retries until retry.maxDuration`,
    });
  }
  if (AUTH_ERRORS.has(fatal.code ?? 0)) return classifyRdKafkaError(fatal);
  return new RelayError('KAFKA_UNAVAILABLE', `the Kafka producer failed and is replaced: ${fatal.message}`, { cause: fatal, retriable: true, details: { kafkaError: fatal.code } });
}
