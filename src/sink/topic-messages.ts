import type { SinkRecord } from './sink.js';

/** The message shape kafkajs and the librdkafka client's KafkaJS-compatible API share. */
export interface TopicMessage {
  key: string | Buffer | null;
  value: Buffer | null;
  headers: Record<string, string | Buffer>;
  timestamp?: string;
}

/**
 * Records grouped by topic for one produce call, each topic's messages in the order given (the per-partition
 * order the relay guarantees). A record timestamp is set only when the mapping gave one (the event-time column);
 * otherwise the producer stamps the send time.
 */
export function groupByTopic(records: readonly SinkRecord[]): { topic: string; messages: TopicMessage[] }[] {
  const byTopic = new Map<string, TopicMessage[]>();
  for (const r of records) {
    let messages = byTopic.get(r.topic);
    if (!messages) byTopic.set(r.topic, (messages = []));
    const message: TopicMessage = { key: r.key, value: r.value, headers: r.headers };
    if (r.timestampMs !== undefined) message.timestamp = String(r.timestampMs);
    messages.push(message);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}
