import { RelayError, errorMessage, isRelayError, type ErrorCode } from '../errors.js';
import type { Lsn } from '../lsn.js';
import type { KafkaSettings } from '../config/types.js';
import { topicWriteGrant } from '../sink/acl-grant.js';
import { bootstrapServers } from '../sink/topic-check.js';
import { CLUSTER_AUTHORIZATION_FAILED, producerIdRefusedFix, TRANSACTIONAL_ID_AUTHORIZATION_FAILED } from '../sink/rdkafka-errors.js';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from './checkpoint.js';
import type { WindowSample } from './window-samples.js';
import { ReadTimeout, type CheckpointClient, type CheckpointRecord } from './checkpoint-client.js';

/** Compaction keeps one record per slot; short segments let it run within the hour, so a restart reads little. */
const TOPIC_CONFIG = { 'cleanup.policy': 'compact', 'segment.ms': String(60 * 60_000), 'min.cleanable.dirty.ratio': '0.1' };

const READ_TIMEOUT_MS = 30_000;

/**
 * Checkpoints in a compacted Kafka topic, key = slot name. Kafka rather than a table in PostgreSQL because the
 * exactly-once mode must commit the checkpoint in the same Kafka transaction as the events it covers; the other
 * modes use the same store so that `status` and replays have one place to look. It survives a container restart
 * without a volume, like the slot itself.
 */
/** How librdkafka and kafkajs say that no broker answered (as opposed to a refusal). */
const UNREACHABLE = /transport failure|all broker connections are down|timed out|timeout|ECONNREFUSED|EHOSTUNREACH|ENOTFOUND|connection error|Connection refused/i;

/** The fix when no broker answered: told of grants (CREATE, READ, group ACLs), an operator went looking for a missing one. */
const NO_ANSWER = 'Kafka did not answer: check that the brokers in kafka.brokers are up and reachable from here, and the TLS/SASL settings';

export class KafkaCheckpointStore {
  /** Written into every checkpoint record (see Checkpoint.replayWindow); set once the start decided the window. */
  replayWindow: string | undefined;
  /** Written into every checkpoint record (see Checkpoint.systemId); set once the start read it from PostgreSQL. */
  systemId: string | undefined;
  /** Written into every checkpoint record (see Checkpoint.timeline); set once a session streams (and at each one after it). */
  timeline: number | undefined;
  /**
   * The replay window's samples at or below a record's position, written into every record, the exactly-once
   * mode's transactional ones too (see Checkpoint.replaySamples); set once the start decided the window, unset
   * without one.
   */
  replaySamples: ((upTo: Lsn) => WindowSample[]) | undefined;

  constructor(
    readonly client: CheckpointClient,
    readonly topic: string,
    /** kafka.brokers: the fixes' kafka-topics.sh, kafka-configs.sh and kafka-acls.sh need them (they have no default) to run as printed. */
    private readonly brokers: KafkaSettings['brokers'],
  ) {}

  /** Creates the topic (compacted, one partition) unless it exists. Writers call it; readers never do. */
  async ensureTopic(): Promise<void> {
    try {
      await this.client.createTopic({ topic: this.topic, partitions: 1, config: TOPIC_CONFIG });
    } catch (err) {
      // Told to create the topic, an operator whose brokers were down went looking for a missing grant.
      const hint = UNREACHABLE.test(errorMessage(err))
        ? `${NO_ANSWER}; the relay creates the topic once they answer`
        : `${this.createItYourself()}, or grant the relay CREATE on it`;
      throw this.failure('cannot create the checkpoint topic', err, hint);
    }
  }

  private createItYourself(): string {
    return `create it yourself: kafka-topics.sh --bootstrap-server ${bootstrapServers(this.brokers)} --create --topic ${this.topic} --partitions 1 --replication-factor 3 --config cleanup.policy=compact (fewer replicas on a smaller cluster)`;
  }

  /**
   * A checkpoint write that failed, with the fix for this topic. The client classified the failure
   * (CheckpointProducer.send, or exactly-once's transactional sink); the fixes of those codes speak of event topics
   * and poison events (skip the event with slot advance), which a refused checkpoint is not. A creation that failed
   * keeps its own fix, and a failure without a fix here keeps the client's (exactly-once's transactional id).
   */
  writeFailure(err: unknown): RelayError {
    if (isRelayError(err) && err.code === 'CHECKPOINT_FAILED') return err;
    const cause = isRelayError(err) ? err : undefined;
    const fixes: Partial<Record<ErrorCode, string>> = {
      KAFKA_AUTH: `grant the relay's principal WRITE and DESCRIBE on the topic ${this.topic} (${topicWriteGrant(this.brokers, [this.topic])}; docs/security.md), and check kafka.saslMechanism/username/password`,
      RECORD_TOO_LARGE: `raise the max.message.bytes of the topic ${this.topic} (kafka-configs.sh --bootstrap-server ${bootstrapServers(this.brokers)} --alter --entity-type topics --entity-name ${this.topic} --add-config max.message.bytes=1048576): a checkpoint record is at most a few KiB`,
      RECORD_INVALID: `the topic ${this.topic} refuses the record (a topic policy, its message.timestamp.* settings): check its configuration with kafka-configs.sh --bootstrap-server ${bootstrapServers(this.brokers)} --describe --entity-type topics --entity-name ${this.topic}`,
      TOPIC_INVALID: `Kafka refuses records for the topic ${this.topic} (an internal topic, or one it cannot write): point checkpoint.topic at a topic of the relay's own`,
      TOPIC_NOT_FOUND: `the topic was deleted while the relay ran: ${this.createItYourself()}, or restart the relay, which creates it`,
    };
    // A producer id refused and exactly-once's transactional id refused are KAFKA_AUTH too, mended by other grants
    // than the topic's: the event producer's fix for the one, the client's own for the other.
    const kafkaError = cause?.details.kafkaError;
    const fix =
      kafkaError === CLUSTER_AUTHORIZATION_FAILED
        ? `${producerIdRefusedFix(`the topic ${this.topic}`, this.brokers)}; the relay writes the checkpoint again at its next interval`
        : kafkaError === TRANSACTIONAL_ID_AUTHORIZATION_FAILED
          ? cause?.hint
          : cause && fixes[cause.code];
    return new RelayError('CHECKPOINT_FAILED', `cannot write the checkpoint topic "${this.topic}": ${errorMessage(err)}`, {
      cause: err,
      retriable: true,
      hint: fix ?? cause?.hint ?? 'check that the brokers in kafka.brokers are up and reachable from here; the relay writes the checkpoint again at its next interval',
      details: cause?.details.kafkaError === undefined ? {} : { kafkaError: cause.details.kafkaError },
    });
  }

  /** The record to produce (plainly or inside a Kafka transaction). */
  message(checkpoint: Checkpoint): CheckpointRecord {
    const replayWindow = this.replayWindow ?? checkpoint.replayWindow;
    const systemId = this.systemId ?? checkpoint.systemId;
    const timeline = this.timeline ?? checkpoint.timeline;
    // The window in force, not the checkpoint's: a record rewritten without a time window carries no samples.
    const replaySamples = this.replaySamples?.(checkpoint.lsn);
    return {
      key: checkpoint.slot,
      value: encodeCheckpoint({ ...checkpoint, replaySamples, ...(replayWindow === undefined ? {} : { replayWindow }), ...(systemId === undefined ? {} : { systemId }), ...(timeline === undefined ? {} : { timeline }) }),
    };
  }

  /**
   * The last committed checkpoint of `slot` (read_committed: a checkpoint of an aborted Kafka transaction is
   * never seen); none when the topic does not exist yet. Reads the topic to its end; compaction keeps that short.
   */
  async read(slot: string, timeoutMs = READ_TIMEOUT_MS): Promise<Checkpoint | undefined> {
    let latest: Checkpoint | undefined;
    let failed: RelayError | undefined;
    const partitions = new Set<number>();
    try {
      const exists = await this.client.readAll(
        this.topic,
        ({ key, value, partition }) => {
          if (key !== slot) return;
          partitions.add(partition);
          // Only the slot's last record counts, as compaction will keep only it: a tombstone deletes the checkpoint
          // (an older one must not come back until the cleaner runs), and a newer record supersedes an unreadable one.
          latest = undefined;
          failed = undefined;
          if (!value) return;
          try {
            latest = decodeCheckpoint(value, this.topic);
          } catch (err) {
            failed = err as RelayError;
          }
        },
        timeoutMs,
      );
      if (!exists) return undefined;
    } catch (err) {
      if (err instanceof ReadTimeout) {
        throw new RelayError('CHECKPOINT_FAILED', `reading the checkpoint topic "${this.topic}" did not reach its end within ${timeoutMs / 1000} s`, {
          retriable: true,
          hint: 'a transaction of another producer may be open on the topic (it is aborted after its transaction timeout); check the brokers',
        });
      }
      throw this.failure(
        'cannot read the checkpoint topic',
        err,
        UNREACHABLE.test(errorMessage(err))
          ? NO_ANSWER
          : 'check the brokers, that the relay may DESCRIBE and READ the topic, and its group ACL (docs/security.md): DESCRIBE on group outbox-relay-checkpoint-reader with librdkafka, READ on the prefix outbox-relay-checkpoint-reader- with kafkajs',
      );
    }
    // Records of one partition come in order; of several, in no order that says which is newer. The relay
    // creates the topic with one partition, and a key stays in its partition while the count does: a slot's
    // records in several partitions mean the count was raised, and the older record could win the read.
    if (partitions.size > 1) {
      throw new RelayError('CHECKPOINT_FAILED', `the checkpoint topic "${this.topic}" holds checkpoints of slot "${slot}" in ${partitions.size} partitions (its partition count was raised): which one is newest cannot be told`, {
        hint: `point checkpoint.topic at a new topic (the relay creates it with one partition; a replay window recorded in the old one does not come along) and start again: the relay starts at the slot`,
        details: { partitions: [...partitions].sort((a, b) => a - b) },
      });
    }
    if (failed) throw failed;
    return latest;
  }

  private failure(what: string, err: unknown, hint: string): RelayError {
    if (err instanceof RelayError) return err;
    return new RelayError('CHECKPOINT_FAILED', `${what} "${this.topic}": ${errorMessage(err)}`, { cause: err, retriable: true, hint });
  }
}
