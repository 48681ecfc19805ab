import { describeCheckpoint } from '../checkpoint/checkpoint.js';
import { createCheckpointClient } from '../checkpoint/create-checkpoint-client.js';
import { KafkaCheckpointStore } from '../checkpoint/kafka-checkpoint-store.js';
import { readTopicPolicy } from '../checkpoint/topic-policy.js';
import { guaranteeConfig } from '../config/guarantee-config.js';
import type { RelayConfig } from '../config/types.js';
import { RelayError, isRelayError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { formatLsn, parseLsn } from '../lsn.js';
import { ABORTED, unlessAborted } from '../retry.js';
import type { SlotStatus } from './slots.js';

/** A status command waits this long for the checkpoint topic, not the relay's 30 s: it is one line of a view. */
const READ_TIMEOUT_MS = 10_000;

export interface CheckpointStatus {
  topic: string;
  /** The last committed checkpoint of the slot; null when none was written (or it could not be read: `error`). */
  checkpoint: Record<string, string | null> | null;
  /**
   * WAL the replay window keeps: from the slot's confirmed_flush_lsn (the oldest replayable LSN) to the checkpoint
   * (where a normal restart resumes). Null without a checkpoint or a slot.
   */
  replayWindow: { oldestReplayableLsn: string; checkpointLsn: string; retainedBytes: number } | null;
  error?: { code: string; message: string; fix?: string };
  /** The topic may drop checkpoints or grow without bound (CHECKPOINT_TOPIC_POLICY); absent when it keeps them, or could not be described. */
  topicPolicy?: { code: string; message: string; fix: string };
}

/**
 * The checkpoint of `config.slot` from the checkpoint topic, when Kafka settings are given; undefined otherwise.
 * `signal` (the command's stop) ends the wait for Kafka at once, with INTERRUPTED: a read from an unreachable broker
 * ends only at its timeout, which the command's Ctrl-C waited for.
 */
export async function checkpointStatus(config: RelayConfig, slot: SlotStatus | undefined, signal: AbortSignal): Promise<CheckpointStatus | undefined> {
  if (!config.kafka.brokers || config.kafka.brokers.length === 0) return undefined;
  const topic = guaranteeConfig(config).checkpointTopic;
  const status = await unlessAborted(() => readStatus(config, topic, slot), signal);
  // The read left behind ends with the process.
  if (status === ABORTED) throw new RelayError('INTERRUPTED', `the read of the checkpoint topic "${topic}" was given up on at a stop signal`);
  return status;
}

async function readStatus(config: RelayConfig, topic: string, slot: SlotStatus | undefined): Promise<CheckpointStatus> {
  const store = new KafkaCheckpointStore(createCheckpointClient(config.kafka, silentLogger(), '-status'), topic, config.kafka.brokers);
  try {
    const checkpoint = await store.read(config.slot, READ_TIMEOUT_MS);
    // Asked only of a Kafka that answered the read: one that does not would hold the command for kafkajs' own
    // connection attempts. A principal without DESCRIBE_CONFIGS only misses this line (the relay logs the skip).
    const problem = await readTopicPolicy(config.kafka, silentLogger(), topic).catch(() => undefined);
    const topicPolicy = problem && { topicPolicy: { code: problem.code, message: problem.message, fix: problem.hint! } };
    if (!checkpoint) return { topic, checkpoint: null, replayWindow: null, ...topicPolicy };
    const confirmed = slot?.confirmedFlushLsn ? parseLsn(slot.confirmedFlushLsn) : undefined;
    const replayWindow =
      confirmed === undefined
        ? null
        : { oldestReplayableLsn: formatLsn(confirmed), checkpointLsn: formatLsn(checkpoint.lsn), retainedBytes: Math.max(0, Number(checkpoint.lsn - confirmed)) };
    return { topic, checkpoint: describeCheckpoint(checkpoint), replayWindow, ...topicPolicy };
  } catch (err) {
    // Kafka unreachable is part of the view, like a relay that does not answer, not a failure of the command.
    if (!isRelayError(err)) throw err;
    return { topic, checkpoint: null, replayWindow: null, error: { code: err.code, message: err.message, ...(err.hint ? { fix: err.hint } : {}) } };
  }
}
