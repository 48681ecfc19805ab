import type { LibrdKafkaError } from '@confluentinc/kafka-javascript';
import { settlesWithin } from '../retry.js';
import { isFatalRdKafkaError } from './rdkafka-errors.js';
import { PARKED_MAX_MS } from './rdkafka-produce.js';

/**
 * One librdkafka producer's fatal error, kept from its error events. Its records, once it failed, say only
 * ERR__FATAL or ERR__PURGE_QUEUE; the error event says why (the patched addon's: change 7 of
 * scripts/patch-kafka-client.mjs), such as a principal refused a producer id, and may come after their reports.
 */
export class FatalErrorWatch {
  private error: LibrdKafkaError | undefined;
  private came!: () => void;
  private readonly arrived = new Promise<void>((resolve) => (this.came = resolve));

  /** The error listener: keeps the first fatal error, ignores the others. */
  readonly observe = (err: LibrdKafkaError): void => {
    if (!isFatalRdKafkaError(err)) return;
    this.error ??= err;
    this.came();
  };

  /** The fatal error, if its event came. */
  get fatal(): LibrdKafkaError | undefined {
    return this.error;
  }

  /** The fatal error, waiting for its event up to PARKED_MAX_MS; undefined if none came (an unpatched addon). */
  async cause(): Promise<LibrdKafkaError | undefined> {
    await settlesWithin(this.arrived, PARKED_MAX_MS);
    return this.error;
  }
}
