import type { Logger } from 'pino';
import type { RelayError } from '../errors.js';
import type { RelayObserver } from './observer.js';

/**
 * What the relay says about losing PostgreSQL: one warn line (and one count in errors_total) when an outage
 * starts, one info line when streaming resumes, the attempts in between at debug. A 50 s restart is one incident,
 * not a dozen, as for a Kafka outage.
 */
export class PostgresOutageLog {
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
    this.logger.warn({ code: error.code, err: error.message, retryInMs }, 'replication connection lost: reconnecting');
  }

  /** A session is streaming again. */
  recovered(): void {
    if (this.since === undefined) return;
    this.logger.info({ downMs: this.now() - this.since, attempts: this.attempts }, 'replication connection back: streaming resumed');
    this.since = undefined;
    this.attempts = 0;
  }
}
