import type { Logger } from 'pino';
import type { RelayError } from '../errors.js';
import type { RelayObserver } from './observer.js';

/**
 * What the relay says when a replication session cannot start or ends: one warn line (and one count in
 * errors_total) when an outage starts, one info line when streaming resumes, the attempts in between at debug. A
 * 50 s restart is one incident, not a dozen, as for a Kafka outage. A session also needs Kafka before it streams
 * (exactly-once claims the slot's transactional id, the start position is read from the checkpoint topic): the
 * line names the side that failed.
 */
export class SessionOutageLog {
  private since: number | undefined;
  private attempts = 0;

  constructor(
    private readonly logger: Logger,
    private readonly observer: RelayObserver,
    private readonly now: () => number = Date.now,
  ) {}

  /** A session could not start or ended with a retriable error; the next attempt is in `retryInMs`. */
  failed(error: RelayError, retryInMs: number): void {
    this.attempts++;
    if (this.since !== undefined) {
      this.logger.debug({ code: error.code, err: error.message, retryInMs, attempt: this.attempts }, 'PostgreSQL still unavailable');
      return;
    }
    this.since = this.now();
    this.observer.error?.(error.code);
    const message = isKafkaSide(error) ? 'Kafka unavailable while starting a replication session: retrying' : 'replication connection lost: reconnecting';
    this.logger.warn({ code: error.code, err: error.message, retryInMs }, message);
  }

  /** A session is streaming again. */
  recovered(): void {
    if (this.since === undefined) return;
    this.logger.info({ downMs: this.now() - this.since, attempts: this.attempts }, 'replication connection back: streaming resumed');
    this.since = undefined;
    this.attempts = 0;
  }
}

/** A failure of the Kafka side of a session start: the claim of the slot, the checkpoint read. */
export function isKafkaSide(error: RelayError): boolean {
  return error.code.startsWith('KAFKA_') || error.code === 'CHECKPOINT_FAILED';
}
