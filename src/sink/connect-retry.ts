import type { Logger } from 'pino';
import type { KafkaSettings, RetryPolicy } from '../config/types.js';
import { RelayError, asRelayError, type ErrorCode } from '../errors.js';
import { OutageLog } from '../outage-log.js';
import { ABORTED, backoffDelay, sleep, unlessAborted } from '../retry.js';
import type { Sink } from './sink.js';

export interface ConnectRetry {
  /** Named in the connected line. */
  brokers: KafkaSettings['brokers'];
  retry: Pick<RetryPolicy, 'initialDelayMs' | 'maxDelayMs' | 'maxDurationMs'>;
  logger: Logger;
  /** A stop: ends a connect under way (its client is the stopper's to close) and a backoff. */
  signal: AbortSignal;
  /** Each failed attempt that is retried (retries_total). */
  retrying?: (code: ErrorCode) => void;
}

/**
 * Connects `sink` for a command's start (run, republish): a retriable failure is retried with backoff until
 * retry.maxDuration, so a broker restarting or a leader election meets a wait, not an exit. One warn line when the
 * trouble starts, its attempts at debug, and `connected to Kafka` (with downMs and attempts after an outage).
 * False when `signal` aborted first; the last failure, with how long it was tried, once the bound is spent.
 */
export async function connectWithRetry(sink: Pick<Sink, 'connect'>, options: ConnectRetry): Promise<boolean> {
  const { brokers, retry, logger, signal } = options;
  const started = Date.now();
  // Its end line is the connected line, with how long the outage lasted when there was one.
  const outage = new OutageLog(logger, { started: 'cannot connect to Kafka yet: retrying', ongoing: 'still cannot connect to Kafka', ended: 'connected to Kafka' });
  for (;;) {
    try {
      // A stop does not wait for a connect to an unreachable broker, which librdkafka ends only at the attempt's
      // timeout (up to 10 s): the caller closes the sink.
      if ((await unlessAborted(() => sink.connect(), signal)) === ABORTED) return false;
      if (!outage.recovered({ brokers })) logger.info({ brokers }, 'connected to Kafka');
      return true;
    } catch (err) {
      const error = asRelayError(err);
      if (!error.retriable) throw error;
      if (signal.aborted) return false;
      if (Date.now() - started >= retry.maxDurationMs) {
        // The cause's own code (KAFKA_UNAVAILABLE, KAFKA_AUTH) says what to fix; the message says how long we tried.
        throw new RelayError(error.code, `cannot connect to Kafka for ${Math.round((Date.now() - started) / 1000)} s (${outage.attempts + 1} attempts): ${error.message}`, {
          cause: error,
          details: error.details,
          hint: error.hint ?? 'check kafka.brokers and that the brokers are up and reachable from here (retry.maxDuration bounds the wait)',
        });
      }
      const delay = backoffDelay(retry, outage.attempts);
      options.retrying?.(error.code);
      outage.failed({ code: error.code, err: error.message, retryInMs: delay });
      await sleep(delay, signal);
      if (signal.aborted) return false;
    }
  }
}
