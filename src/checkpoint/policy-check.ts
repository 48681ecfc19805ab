import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import { settlesWithin } from '../retry.js';
import type { KafkaCheckpointStore } from './kafka-checkpoint-store.js';

/**
 * After the start, not during it: with librdkafka the check goes through kafkajs (its binding has no
 * DescribeConfigs), whose load takes ~60 ms of the main thread, and the start must not wait for it. (It also
 * leaves kafkajs loaded: the relay's RSS grew by 1.0–4.4 MiB over the check, three relays on the test stack.)
 */
const DELAY_MS = 2000;
/** A close waits this long at most for a check under way; its result is only a log line. */
const CLOSE_WITHIN_MS = 1000;

/**
 * Checks the checkpoint topic's cleanup policy once, in the background, and logs a warning with the fix when it
 * may drop checkpoints or grow without bound (checkpointTopicProblem). A warning, not a refusal: such a topic
 * loses no event by itself, and a relay that ran with it so far keeps running. A principal without
 * DESCRIBE_CONFIGS on the topic only skips the check (one info line).
 */
export class PolicyCheck {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly store: KafkaCheckpointStore,
    private readonly logger: Logger,
  ) {}

  /** Schedules the check; later calls (a start position decided again after a failed attempt) do nothing. */
  schedule(delayMs = DELAY_MS): void {
    if (this.timer) return;
    this.timer = setTimeout(() => (this.running = this.check()), delayMs);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    try {
      const problem = await this.store.policyProblem();
      if (problem) this.logger.warn({ code: problem.code, topic: this.store.topic, fix: problem.hint }, problem.message);
      else this.logger.debug({ topic: this.store.topic }, "checkpoint topic's cleanup.policy checked: it keeps each slot's last checkpoint (or the relay creates it so)");
    } catch (err) {
      this.logger.info({ topic: this.store.topic, err: errorMessage(err) }, "cannot read the checkpoint topic's configuration (DESCRIBE_CONFIGS on it): its cleanup.policy is not checked");
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    if (this.running) await settlesWithin(this.running, CLOSE_WITHIN_MS);
  }
}
