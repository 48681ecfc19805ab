import { randomUUID } from 'node:crypto';
import { loadConfig } from '../src/config/relay-config.js';
import { silentLogger } from '../src/logger.js';
import { createSink } from '../src/sink/create-sink.js';
import { batchLimits } from '../src/sink/delivery-engine.js';
import type { SinkRecord } from '../src/sink/sink.js';
import type { KafkaClient } from './relay-process.js';

/** Records shaped as the relay produces them from the bench's rows: same key, value size and headers. */
function records(count: number, topic: string): { record: SinkRecord; size: number }[] {
  const commitTime = new Date().toISOString();
  return Array.from({ length: count }, (_, g) => {
    const id = randomUUID();
    const value = Buffer.from(JSON.stringify({ note: 'x'.repeat(150), lines: 3, orderId: g, customer: `c-${g % 1000}` }));
    const headers = { id, type: 'OrderPlaced', 'aggregate-type': 'order', 'aggregate-id': `agg-${g % 100}`, 'outbox-lsn': '0/1A2B3C4D', 'outbox-commit-time': commitTime, 'outbox-xid': '123456' };
    const key = Buffer.from(id);
    let size = key.length + value.length + topic.length;
    for (const [k, v] of Object.entries(headers)) size += k.length + v.length;
    return { record: { topic, key, value, headers }, size };
  });
}

/**
 * Bytes of key, value and header names and values of the relay's record, averaged: what Kafka's own producer
 * benchmark, which sends neither keys nor headers, pads its values to.
 */
export function relayRecordBytes(topic: string): number {
  const sample = records(1000, topic);
  return Math.round(sample.reduce((sum, r) => sum + r.size - topic.length, 0) / sample.length);
}

/**
 * The broker-side limit: the relay's own sink (same client, acks=all, idempotence, the engine's batch limits, as
 * many batches in flight as the engine keeps with it) producing pre-built records back to back, with no
 * PostgreSQL in the loop.
 */
export async function producerEventsPerSecond(brokers: string[], topic: string, count: number, client: KafkaClient): Promise<number> {
  const config = loadConfig({ env: {}, flags: { 'kafka.brokers': brokers.join(','), 'kafka.client': client }, required: ['kafka.brokers'] });
  const sink = await createSink(config.kafka, silentLogger());
  await sink.connect();
  try {
    const all = records(count, topic);
    await sink.send(all.slice(0, 100).map((r) => r.record)); // connection and metadata out of the timing
    const depth = sink.pipelineDepth ?? 1;
    const limit = batchLimits(config.delivery, depth);
    const inFlight: Promise<void>[] = [];
    const started = performance.now();
    for (let i = 0; i < all.length; ) {
      const batch: SinkRecord[] = [];
      let bytes = 0;
      while (i < all.length && batch.length < limit.events && (batch.length === 0 || bytes + all[i]!.size <= limit.bytes)) {
        bytes += all[i]!.size;
        batch.push(all[i++]!.record);
      }
      // As many requests in flight as the delivery engine keeps with this sink, answered in order.
      inFlight.push(sink.send(batch));
      if (inFlight.length >= depth) await inFlight.shift();
    }
    await Promise.all(inFlight);
    return count / ((performance.now() - started) / 1000);
  } finally {
    await sink.close();
  }
}
