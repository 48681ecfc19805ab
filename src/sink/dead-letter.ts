import type { Logger } from 'pino';
import { RelayError, asRelayError } from '../errors.js';
import { formatLsn } from '../lsn.js';
import type { RelayObserver } from '../pipeline/observer.js';
import type { OutboxEvent } from '../route/event.js';
import { idFields } from '../route/logged-id.js';
import { DEAD_LETTER_PLACEHOLDERS, checkpointTopicRefused, compileTopicTemplate, type TopicTemplate } from '../route/topic-template.js';
import type { KafkaWatch, PoisonDecision } from './delivery.js';
import { classifyKafkaError } from './kafka-errors.js';
import type { Sink, SinkRecord } from './sink.js';

/** Headers added to a dead letter; the original key, value and headers are kept as they were. */
export const DLQ_HEADER = {
  code: 'outbox-dlq-error-code',
  message: 'outbox-dlq-error-message',
  attempts: 'outbox-dlq-attempts',
  lsn: 'outbox-dlq-source-lsn',
  topic: 'outbox-dlq-original-topic',
} as const;

/** Where an event that never got a topic came from (unmappable rows and messages): stands in for ${topic}. */
function sourceName(event: OutboxEvent): string {
  const source = event.headers['outbox-table'] ?? event.headers['outbox-message-prefix'];
  return source === undefined ? 'outbox' : source.toString();
}

/**
 * The `dead-letter` poison policy: the record goes to the dead-letter topic with the error in headers, and the
 * relay continues ('skip': the event counts as acknowledged). If the dead letter itself cannot be written
 * (rejected, or Kafka unavailable beyond retry.maxDuration) the relay halts: an event is never dropped silently.
 * A stop ends the retries (they could outlast shutdownGrace): the event is neither skipped nor a halt, and the
 * next run reads it again.
 */
export class DeadLetters {
  private readonly template: TopicTemplate;

  constructor(
    private readonly sink: Sink,
    topicTemplate: string,
    private readonly logger: Logger,
    private readonly observer: RelayObserver = {},
    /** The sink is not the relay's own (exactly-once produces through a transactional one): connect it before the first dead letter. */
    private connectFirst = false,
    /** The checkpoint topic: no dead letter goes there (route/topic-template.ts, checkpointTopicRefused). */
    private readonly checkpointTopic?: string,
  ) {
    this.template = compileTopicTemplate(topicTemplate, 'delivery.deadLetterTopic', DEAD_LETTER_PLACEHOLDERS);
  }

  async handle(event: OutboxEvent, error: RelayError, stop: AbortSignal, kafka: KafkaWatch): Promise<PoisonDecision> {
    const originalTopic = event.topic || sourceName(event);
    const lsn = formatLsn(event.txn.commitLsn);
    const attempts = String(error.details.attempts ?? 1);
    const context = { ...idFields(event.eventId), lsn, code: error.code, originalTopic, attempts };
    let topic: string;
    try {
      topic = this.template.render(() => originalTopic);
      // ${topic} of an event refused for naming the checkpoint topic would name it again.
      if (topic === this.checkpointTopic) throw checkpointTopicRefused(topic);
    } catch (err) {
      return this.halt(error, asRelayError(err), undefined);
    }
    const record: SinkRecord = {
      topic,
      key: event.key,
      value: event.value,
      headers: { ...event.headers, [DLQ_HEADER.code]: error.code, [DLQ_HEADER.message]: error.message, [DLQ_HEADER.attempts]: attempts, [DLQ_HEADER.lsn]: lsn, [DLQ_HEADER.topic]: event.topic },
    };
    const failure = await this.send(record, stop, kafka);
    if (failure === 'stopped') {
      this.logger.info({ ...context, deadLetterTopic: topic }, 'stopping before the dead letter was written: the event is read again after restart');
      return 'stopped';
    }
    if (failure) return this.halt(error, failure, topic);
    this.observer.deadLettered?.(error.code);
    this.logger.warn({ ...context, err: error.message, deadLetterTopic: topic }, 'event dead-lettered: continuing');
    return 'skip';
  }

  /**
   * The halt when the dead letter cannot be written: one error (the relay's halt line), with the event's id and
   * commit LSN as a poison halt has them, the dead letter's own failure as its code and fix (what to mend: a
   * missing topic, an ACL), and the event's refusal in the message.
   */
  private halt(poisoned: RelayError, failure: RelayError, topic: string | undefined): { halt: RelayError } {
    const where = topic === undefined ? 'no dead-letter topic could be named for it' : `its dead letter could not be written to "${topic}"`;
    return {
      halt: new RelayError(failure.code, `${poisoned.message}; ${where}: ${failure.message}`, {
        cause: failure,
        details: { ...poisoned.details, poisonCode: poisoned.code, ...(topic === undefined ? {} : { deadLetterTopic: topic }) },
        hint: `${failure.hint ?? 'check the dead-letter topic and that Kafka takes writes to it'}; on restart the event goes to the poison policy again`,
      }),
    };
  }

  /**
   * Undefined once written; the error when it was rejected or Kafka stayed unavailable past retry.maxDuration.
   * Its trouble with Kafka is delivery's outage, whether Kafka leaves a request unanswered or refuses it (an
   * outage of its own for the refusals made one that met both two outages in the log). A connect ends at its own
   * timeout.
   */
  private async send(record: SinkRecord, stop: AbortSignal, kafka: KafkaWatch): Promise<RelayError | 'stopped' | undefined> {
    for (;;) {
      try {
        if (this.connectFirst) {
          await this.sink.connect();
          this.connectFirst = false;
        }
        await kafka.send(this.sink.send([record]));
        return undefined;
      } catch (err) {
        // A stop closes the sink: what the send failed with then is the stop's doing, not the dead letter's.
        if (stop.aborted) return 'stopped';
        const error = classifyKafkaError(err);
        if (!error.retriable) return error;
        if (!(await kafka.backOff(error))) return stop.aborted ? 'stopped' : error;
      }
    }
  }
}
