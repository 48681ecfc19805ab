import { settingRef } from '../config/settings.js';
import type { KafkaSettings } from '../config/types.js';
import { RelayError, errorMessage } from '../errors.js';
import { aclGrant, topicWriteGrant } from './acl-grant.js';
import { rootCause } from './kafka-errors.js';
import { TRANSACTIONAL_ID_AUTHORIZATION_FAILED } from './rdkafka-errors.js';

/** One transactional id per slot: two relays on the same slot fence each other instead of both committing. */
export function transactionalId(slot: string): string {
  return `outbox-relay.${slot}`;
}

/**
 * What a failed transactional call allows, for the delivery engine: stored in `RelayError.details` of every error
 * a transactional sink throws (librdkafka's rd_kafka_error_txn_requires_abort / is_retriable / is_fatal).
 */
export interface TransactionFlags {
  /** The open transaction is lost: abort it (its records are never seen by read_committed consumers) and re-send. */
  txnRequiresAbort: boolean;
  /** The same call may simply be repeated inside the open transaction (e.g. a commit that timed out). */
  txnRetriable: boolean;
  /**
   * The producer is unusable: abort() replaces it (re-registering the transactional id aborts what it left open), or
   * lets it go when only a claim follows (AfterAbort).
   */
  txnFatal: boolean;
  /** commit() failed but the broker may have committed: re-read the checkpoint before re-sending anything. */
  ambiguous: boolean;
}

export function transactionFlags(error: RelayError): TransactionFlags {
  const d = error.details;
  return { txnRequiresAbort: d.txnRequiresAbort === true, txnRetriable: d.txnRetriable === true, txnFatal: d.txnFatal === true, ambiguous: d.ambiguous === true };
}

/**
 * Kafka's answers to a producer whose epoch is no longer current, from both clients: INVALID_PRODUCER_EPOCH (47),
 * PRODUCER_FENCED (90), librdkafka's local _FENCED (-144). The broker gives the same answers to a producer that
 * was fenced by a newer instance and to one whose transaction it aborted after the transaction timeout.
 */
const FENCED_CODES = new Set([47, 90, -144]);
const FENCED_TYPES = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'ERR_INVALID_PRODUCER_EPOCH', 'ERR_PRODUCER_FENCED', 'ERR__FENCED']);

export function isEpochError(err: unknown): boolean {
  const root = rootCause(err) as { type?: string; code?: number };
  return FENCED_TYPES.has(root.type ?? '') || FENCED_CODES.has(root.code ?? 0);
}

export interface TransactionState {
  slot: string;
  /** When the open transaction began (ms since the epoch); undefined when none is open. */
  openedAtMs: number | undefined;
  timeoutMs: number;
}

/**
 * Tells fencing from a transaction the broker aborted after delivery.transactionTimeout. The error is the same,
 * so the age of the transaction decides: the broker's clock for it starts after ours (at its first partition),
 * so a transaction younger than the timeout cannot have timed out, and one older than it has, unless a newer
 * instance fenced it within that very window.
 */
export function epochError(state: TransactionState, err: unknown, nowMs = Date.now()): RelayError {
  const id = transactionalId(state.slot);
  if (state.openedAtMs !== undefined && nowMs - state.openedAtMs >= state.timeoutMs) {
    return new RelayError('KAFKA_TXN_TIMEOUT', `the Kafka transaction of "${id}" stayed open ${Math.round((nowMs - state.openedAtMs) / 1000)} s, longer than delivery.transactionTimeout (${state.timeoutMs / 1000} s): the broker aborted it`, {
      cause: err,
      retriable: true,
      hint: 'nothing of it was committed; the source transaction is streamed again. If source transactions take this long to stream, raise delivery.transactionTimeout (at most the brokers\' transaction.max.timeout.ms)',
      details: { txnRequiresAbort: true, txnRetriable: false, txnFatal: true, ambiguous: false } satisfies TransactionFlags,
    });
  }
  return new RelayError('PRODUCER_FENCED', `another relay instance registered transactional id "${id}" (slot "${state.slot}"): this instance was fenced, and its open Kafka transaction aborted`, {
    cause: err,
    hint: 'exactly-once allows one writer per slot: this instance drops what it did not commit and checks the slot again, waiting as a standby while another instance holds it',
    details: { txnRequiresAbort: true, txnRetriable: false, txnFatal: true, ambiguous: false } satisfies TransactionFlags,
  });
}

/**
 * A classified error with the transaction flags (the engine reads them through transactionFlags). A copy: the
 * classification returns a RelayError it is given as it is (classifyRdKafkaError), and flags written into that
 * one changed what its other holders read, the flags of an earlier classification included.
 */
export function withFlags(error: RelayError, flags: TransactionFlags): RelayError {
  return error.withDetails({ ...flags });
}

/** librdkafka's log line (facility ADDPARTS) for a partition the coordinator refused to add to the transaction for its topic's ACL. */
const REFUSED_PARTITION = /Failed to add partition "([^"]+)" \[-?\d+\] to transaction: Broker: Topic authorization failed/;

/**
 * The topics the transaction coordinator refused to add to the open transaction (AddPartitionsToTxn answered
 * TOPIC_AUTHORIZATION_FAILED), from the producer's log: librdkafka names them nowhere else. The transaction turns
 * abortable, its queued records fail only as "Purged in queue", and the abort succeeds (rdkafka_txnmgr.c).
 */
export class RefusedTransactionTopics {
  private readonly topics = new Set<string>();

  readonly observe = (fac: string, message: string): void => {
    const refused = fac === 'ADDPARTS' ? REFUSED_PARTITION.exec(message) : null;
    if (refused) this.topics.add(refused[1]!);
  };

  /** A new transaction: what the last one was refused no longer applies. */
  clear(): void {
    this.topics.clear();
  }

  list(): string[] {
    return [...this.topics];
  }
}

/**
 * A topic's ACL refused inside the Kafka transaction, naming the `refused` topics when librdkafka logged them, and
 * the checkpoint topic by its setting: exactly-once writes each checkpoint in the transaction with the events, so
 * the relay's principal needs WRITE on it as on the event topics (with none known, both are named, and the printed
 * grant has the checkpoint topic's --topic only: the transaction's event topics are not known here). Still an
 * outage a grant ends.
 */
export function transactionTopicRefused(refused: readonly string[], checkpointTopic: string, brokers: KafkaSettings['brokers'], cause: unknown): RelayError {
  const checkpoint = `the checkpoint topic "${checkpointTopic}" (${settingRef('checkpoint.topic')}; each checkpoint is written in the transaction)`;
  const grant = refused.length > 0 ? refused.map((topic) => (topic === checkpointTopic ? checkpoint : `"${topic}"`)).join(', ') : `the event topics and ${checkpoint}`;
  const adding = refused.length > 0 ? refused.map((topic) => `"${topic}"`).join(', ') : 'an event topic or the checkpoint topic';
  const command = refused.length > 0 ? topicWriteGrant(brokers, refused) : `${topicWriteGrant(brokers, [checkpointTopic])}, and a --topic for each event topic`;
  return new RelayError('KAFKA_AUTH', `Kafka refused access: Broker: Topic authorization failed, adding ${adding} to the Kafka transaction`, {
    cause,
    retriable: true,
    details: { kafkaError: 29, ...(refused.length > 0 ? { topics: [...refused] } : {}) },
    hint: `grant the relay's principal WRITE and DESCRIBE on ${grant} (${command}; docs/security.md): the relay retries until retry.maxDuration`,
  });
}

/**
 * The slot's transactional id refused (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, at the claim): WRITE (InitProducerId,
 * AddPartitionsToTxn, EndTxn) and DESCRIBE (the coordinator's lookup) on it. Built here, where the slot and
 * kafka.brokers are known: librdkafka's error names neither. Still an outage a grant ends.
 */
export function transactionalIdRefused(slot: string, brokers: KafkaSettings['brokers'], cause: unknown): RelayError {
  const id = transactionalId(slot);
  return new RelayError('KAFKA_AUTH', `Kafka refused access: ${errorMessage(cause)}`, {
    cause,
    retriable: true,
    details: { kafkaError: TRANSACTIONAL_ID_AUTHORIZATION_FAILED },
    hint: `exactly-once: grant the relay's principal WRITE and DESCRIBE on the transactional id ${id} (${aclGrant(brokers, ['Write', 'Describe'], `--transactional-id ${id}`)}; docs/security.md)`,
  });
}
