import { RelayError } from '../errors.js';

/**
 * Asks the broker about each topic once, before its first produce, so that a missing topic is reported as
 * such right away instead of after the client's metadata retries (or librdkafka's propagation timeout).
 */
export class TopicCheck {
  private readonly known = new Set<string>();

  constructor(
    private readonly fetchMetadata: (topic: string) => Promise<unknown>,
    private readonly isUnknownTopic: (err: unknown) => boolean,
  ) {}

  async check(topics: Iterable<string>): Promise<void> {
    for (const topic of topics) {
      if (this.known.has(topic)) continue;
      try {
        await this.fetchMetadata(topic);
      } catch (err) {
        if (this.isUnknownTopic(err)) {
          throw new RelayError('TOPIC_NOT_FOUND', `topic "${topic}" does not exist and the broker does not create topics automatically`, {
            hint: `create it (kafka-topics.sh --create --topic ${topic}) or enable auto.create.topics.enable on the broker`,
            details: { topic },
          });
        }
        throw err;
      }
      this.known.add(topic);
    }
  }
}
