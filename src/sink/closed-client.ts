import { RelayError } from '../errors.js';
import type { CloseOptions } from './sink.js';

/** What a Kafka client answers once close() was called: not retriable, the relay is stopping. */
export function closedError(): RelayError {
  return new RelayError('KAFKA_UNAVAILABLE', 'the Kafka client was closed (the relay is stopping)', { retriable: false });
}

/**
 * For a client whose connect just finished, `closed` read after it. A close() that came while it connected (a stop
 * during the start's connect, a send's or a claim's) found nothing to close, or closed it before it was up, and
 * neither client library cancels the connect: it was kept and never closed (librdkafka's threads, kafkajs'
 * sockets, keeping the process up), and a send went on to produce on it after close(). It is disconnected here,
 * and the caller refused with closedError().
 */
export async function refuseIfClosed(closed: boolean, disconnect: () => Promise<unknown>): Promise<void> {
  if (!closed) return;
  // The refusal is what to report: a client nobody uses adds nothing by failing to disconnect.
  await disconnect().catch(() => undefined);
  throw closedError();
}

/**
 * How long a close waits for its client's flush (and the transactional sink's abort before it): the client's own
 * bound, cut to the stop's closeBy; none without a flush.
 */
export function flushWithin(options: CloseOptions, boundMs: number): number {
  if (!options.flush) return 0;
  return Math.max(0, Math.min(boundMs, (options.closeBy ?? Infinity) - Date.now()));
}
