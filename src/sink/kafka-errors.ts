import type { KafkaSettings } from '../config/types.js';
import { RelayError, errorMessage, isRelayError } from '../errors.js';
import { certificateProblem } from '../tls-certificate.js';
import { topicWriteGrant } from './acl-grant.js';
import { unverifiedCertificate } from './broker-connect-failures.js';
import { corruptRequest, INVALID_TIMESTAMP_HINT } from './rdkafka-errors.js';

/**
 * Kafka error types that no retry can fix: the record itself (or its topic) is at fault. Not CORRUPT_MESSAGE: see
 * corruptRequest.
 */
const RECORD_ERRORS: Record<string, 'RECORD_TOO_LARGE' | 'RECORD_INVALID' | 'TOPIC_NOT_FOUND' | 'TOPIC_INVALID'> = {
  MESSAGE_TOO_LARGE: 'RECORD_TOO_LARGE',
  RECORD_LIST_TOO_LARGE: 'RECORD_TOO_LARGE',
  INVALID_RECORD: 'RECORD_INVALID',
  INVALID_TOPIC_EXCEPTION: 'TOPIC_INVALID',
  UNKNOWN_TOPIC_OR_PARTITION: 'TOPIC_NOT_FOUND',
  POLICY_VIOLATION: 'RECORD_INVALID',
  INVALID_TIMESTAMP: 'RECORD_INVALID',
};

const AUTH_ERRORS = new Set(['TOPIC_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED', 'SASL_AUTHENTICATION_FAILED', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED']);
/** The listener does not speak SASL, or not this mechanism: a protocol mismatch, not an outage. */
const SASL_PROTOCOL_ERRORS = new Set(['ILLEGAL_SASL_STATE', 'UNSUPPORTED_SASL_MECHANISM']);

export interface KafkaJsLikeError {
  name?: string;
  type?: string;
  /** A connection error's: the socket's own code (e.g. Node's TLS verification code). */
  code?: unknown;
  retriable?: boolean;
  originalError?: unknown;
  cause?: unknown;
}

/**
 * The innermost kafkajs error: KafkaJSNumberOfRetriesExceeded wraps the one that matters, in `cause` (kafkajs 2;
 * `originalError` in 1.x). Followed only while the error has no `type` of its own: before, only `originalError`
 * was, so with retries 0 a wrapped UNKNOWN_TOPIC_OR_PARTITION or CORRUPT_MESSAGE had no type and was retried as an
 * outage for retry.maxDuration instead of meeting the poison policy.
 */
export function rootCause(err: unknown): KafkaJsLikeError {
  let current = err as KafkaJsLikeError;
  for (let depth = 0; depth < 5 && current && current.type === undefined; depth++) {
    const inner = current.originalError ?? current.cause;
    if (inner === undefined || inner === null) break;
    current = inner as KafkaJsLikeError;
  }
  return current ?? {};
}

/**
 * Sorts a failed produce into: a record error (permanent: isolate the record, apply the poison policy),
 * an authorization error, or broker unavailability (retry with backoff until it recovers).
 */
export function classifyKafkaError(err: unknown): RelayError {
  if (isRelayError(err)) return err;
  const root = rootCause(err);
  const type = root.type ?? '';
  const record = RECORD_ERRORS[type];
  if (record) return new RelayError(record, `Kafka rejected the record: ${type} (${errorMessage(root)})`, { cause: err, details: { kafkaError: type }, ...(type === 'INVALID_TIMESTAMP' ? { hint: INVALID_TIMESTAMP_HINT } : {}) });
  if (type === 'CORRUPT_MESSAGE') return corruptRequest(`${type} (${errorMessage(root)})`, err, type);
  if (SASL_PROTOCOL_ERRORS.has(type)) {
    return new RelayError('KAFKA_AUTH', `Kafka refused the SASL handshake: ${type} (${errorMessage(root)})`, {
      cause: err,
      retriable: true,
      hint: 'kafka.brokers points at a listener that does not accept SASL (or not kafka.saslMechanism): use the SASL listener’s port, or leave kafka.saslMechanism unset for a PLAINTEXT listener',
    });
  }
  if (AUTH_ERRORS.has(type) || root.name === 'KafkaJSSASLAuthenticationError') {
    return new RelayError('KAFKA_AUTH', `Kafka refused access: ${type || errorMessage(root)}`, {
      cause: err,
      retriable: true,
      details: { kafkaError: type || root.name },
      hint: 'check kafka.saslMechanism/username/password and the ACLs of the relay principal (WRITE and DESCRIBE on the topics; docs/security.md lists them all)',
    });
  }
  if (certificateProblem(root.code)) return unverifiedCertificate(`${errorMessage(root)} (${String(root.code)})`, err);
  return new RelayError('KAFKA_UNAVAILABLE', `Kafka produce failed: ${errorMessage(root) || errorMessage(err)}`, { cause: err, retriable: true, details: { kafkaError: type || root.name } });
}

export function isRecordError(err: RelayError): boolean {
  return err.code === 'RECORD_TOO_LARGE' || err.code === 'RECORD_INVALID' || err.code === 'TOPIC_NOT_FOUND' || err.code === 'TOPIC_INVALID' || err.code === 'RECORD_REQUIRED_NULL';
}

/**
 * A failure of Kafka's no retry mends and no record is at fault for (brokers without a feature the relay needs):
 * it ends delivery at once. Retried as an outage, it held the relay for retry.maxDuration and then ended it with
 * RETRIES_EXHAUSTED, telling to check that the brokers are up.
 */
export function isIncurable(err: RelayError): boolean {
  return !err.retriable && !isRecordError(err);
}

/**
 * A produce refused for a topic's ACL (TOPIC_AUTHORIZATION_FAILED: kafkajs's type, librdkafka's code 29), named with
 * the topics of the refused request: which grant is missing, or which row values route events to a topic the relay
 * may not write (a prefixed ACL and a mistyped aggregate type). Kafka says only "not authorized". Any other error
 * as it is, and one that names its refused topics already (a transaction's: transactionTopicRefused). Still an
 * outage: a grant ends it, and nothing was skipped meanwhile. `brokers`: kafka.brokers, for the printed grant.
 */
export function namingRefusedTopics(error: RelayError, events: readonly { topic: string }[], brokers: KafkaSettings['brokers']): RelayError {
  const kafkaError = error.details.kafkaError;
  if (error.code !== 'KAFKA_AUTH' || (kafkaError !== 'TOPIC_AUTHORIZATION_FAILED' && kafkaError !== 29) || error.details.topics !== undefined) return error;
  const topics = [...new Set(events.map((event) => event.topic))];
  const named = topics.map((topic) => `"${topic}"`).join(', ');
  return new RelayError('KAFKA_AUTH', `${error.message} (the refused request's topic${topics.length > 1 ? 's' : ''}: ${named})`, {
    cause: error.cause,
    retriable: error.retriable,
    details: { ...error.details, topics },
    hint: `grant the relay's principal WRITE and DESCRIBE on ${named} (${topicWriteGrant(brokers, topics)}; docs/security.md), or, if no event should go there, fix what routes it (topic, routes and the row values they read): the relay retries until retry.maxDuration`,
  });
}

/**
 * A produce request that failed only because another one did (RdKafkaSink): cut off when the sink replaced the
 * producer another request broke (a record the broker refused), or held back behind such a request. It says
 * nothing about the brokers: the engine re-sends it once at once before it counts an outage (DeliveryEngine.retry).
 */
export function collateralFailure(message: string): RelayError {
  return new RelayError('KAFKA_UNAVAILABLE', message, { retriable: true, details: { collateral: true } });
}

export function isCollateral(err: RelayError): boolean {
  return err.details.collateral === true;
}
