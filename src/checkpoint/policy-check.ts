import type { Logger } from 'pino';
import { errorMessage, type RelayError } from '../errors.js';

/**
 * After the start, not during it: the check goes through kafkajs (readTopicPolicy), whose load takes ~60 ms of
 * the main thread, and the start must not wait for it. (It also leaves kafkajs loaded: the relay's RSS grew by
 * 1.0–4.4 MiB over the check, three relays on the test stack.)
 */
const DELAY_MS = 2000;

/**
 * Checks the checkpoint topic's cleanup policy and replicas once, in the background, and logs a warning with the fix
 * when it may drop checkpoints or grow without bound (checkpointTopicProblem), or has too few replicas
 * (checkpointTopicReplication). A warning, not a refusal: such a topic
 * loses no event by itself, and a relay that ran with it so far keeps running. A principal without
 * DESCRIBE_CONFIGS on the topic, or a Kafka that does not answer, only skips the check (one info line).
 */
export class PolicyCheck {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly topic: string,
    private readonly read: () => Promise<RelayError | undefined>,
    private readonly logger: Logger,
  ) {}

  /** Schedules the check; later calls (a start position decided again after a failed attempt) do nothing. */
  schedule(delayMs = DELAY_MS): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => void this.check(), delayMs);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    try {
      const problem = await this.read();
      if (this.closed) return;
      if (problem) this.logger.warn({ code: problem.code, topic: this.topic, fix: problem.hint }, problem.message);
      else this.logger.debug({ topic: this.topic }, "checkpoint topic's cleanup.policy and replicas checked: it keeps each slot's last checkpoint (or the relay creates it so)");
    } catch (err) {
      if (this.closed) return;
      this.logger.info({ topic: this.topic, err: errorMessage(err) }, "cannot read the checkpoint topic's configuration (DESCRIBE_CONFIGS on it): its cleanup.policy is not checked");
    }
  }

  /**
   * Nothing waits for a check under way: its result is only a log line, and its requests end by their own short
   * timeouts (readTopicPolicy), which no close could shorten. It logs nothing once closed.
   */
  close(): void {
    clearTimeout(this.timer);
    this.closed = true;
  }
}
