import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { producerProperties } from '../../src/sink/rdkafka-client.js';
import { load, refusal } from '../support/config-load.js';

describe('kafka producer settings', () => {
  it('refuses exactly-once with kafkajs, naming both settings (its transactions failed the replicated-cluster test)', () => {
    const r = refusal(() => load({ 'kafka.client': 'kafkajs', 'delivery.guarantee': 'exactly-once' }));
    expect(r.code).toBe('CONFIG_INVALID');
    expect(r.message).toContain('delivery.guarantee exactly-once');
    expect(r.message).toContain('kafka.client kafkajs');
    // The fix names the flag and the environment variable too (the key is the config file's).
    expect(r.hint).toContain('kafka.client (--kafka-client / OUTBOX_RELAY_KAFKA_CLIENT) rdkafka');
    expect(load({ 'kafka.client': 'kafkajs', 'delivery.guarantee': 'at-least-once' }).kafka.client).toBe('kafkajs');
  });

  it('defaults to the librdkafka client with bounded request and delivery timeouts', () => {
    const { kafka, delivery } = load({});
    expect(kafka.client).toBe('rdkafka');
    expect(kafka.requestTimeoutMs).toBeLessThanOrEqual(30_000);
    expect(kafka.deliveryTimeoutMs).toBeLessThanOrEqual(30_000);
    expect(delivery.transactionTimeoutMs).toBe(60_000);
  });

  it('maps the settings and the pass-through onto librdkafka properties, the guarantees last', () => {
    const { kafka } = load({ 'kafka.compression': 'zstd', 'kafka.linger': '5ms', 'kafka.batchSize': '64KiB', 'kafka.clientRack': 'az-1', 'kafka.deliveryTimeout': '20s', 'kafka.producer': 'queue.buffering.max.kbytes=2048, sticky.partitioning.linger.ms=0' });
    expect(producerProperties(kafka)).toMatchObject({
      'compression.type': 'zstd',
      'linger.ms': 5,
      'batch.size': 65536,
      'client.rack': 'az-1',
      'message.timeout.ms': 20_000,
      'queue.buffering.max.kbytes': '2048',
      'sticky.partitioning.linger.ms': '0',
      'enable.idempotence': true,
      acks: -1,
    });
  });

  it('reconnects after 20 ms, not librdkafka\'s 100, unless kafka.producer says otherwise', () => {
    expect(producerProperties(load({}).kafka)['reconnect.backoff.ms']).toBe(20);
    expect(producerProperties(load({ 'kafka.producer': 'reconnect.backoff.ms=100' }).kafka)['reconnect.backoff.ms']).toBe('100');
  });

  it('reads kafka.producer as a mapping from the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'producer-'));
    const file = join(dir, 'relay.yaml');
    writeFileSync(file, 'kafka:\n  producer:\n    queue.buffering.max.messages: 50000\n    max.in.flight: 5\n');
    expect(load({}, {}, file).kafka.producer).toEqual({ 'queue.buffering.max.messages': '50000', 'max.in.flight': '5' });
  });

  it.each([
    ['acks=1', 'kafka.producer.acks'],
    ['enable.idempotence=false', 'kafka.producer.enable.idempotence'],
    ['transactional.id=mine', 'kafka.producer.transactional.id'],
    ['max.in.flight=10', 'kafka.producer.max.in.flight'],
    ['max.in.flight.requests.per.connection=6', 'kafka.producer.max.in.flight.requests.per.connection'],
    ['retries=0', 'kafka.producer.retries'],
    // A finite count failed a request while the ones behind it were delivered (out of commit order); only 0 was refused.
    ['retries=3', 'kafka.producer.retries'],
    ['message.send.max.retries=10', 'kafka.producer.message.send.max.retries'],
    // No send would ever complete: the relay confirms an event on its successful delivery report.
    ['delivery.report.only.error=true', 'kafka.producer.delivery.report.only.error'],
    ['enable.gapless.guarantee=false', 'kafka.producer.enable.gapless.guarantee'],
    // Newest first, out of commit order; librdkafka refused it only at the first connect (idempotence needs fifo).
    ['queuing.strategy=lifo', 'kafka.producer.queuing.strategy'],
    // librdkafka reads topic.<name> as the topic property <name>.
    ['topic.queuing.strategy=lifo', 'kafka.producer.topic.queuing.strategy'],
    ['topic.acks=1', 'kafka.producer.topic.acks'],
    ['compression.type=lz4', 'kafka.producer.compression.type'],
    ['sasl.password=x', 'kafka.producer.sasl.password'],
  ])('refuses kafka.producer %s at start, naming the key', (value, key) => {
    const error = refusal(() => load({}, { OUTBOX_RELAY_KAFKA_PRODUCER: value }));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(`${key} is not allowed`);
  });

  it.each([
    ['max.in.flight=10', 'more than 5 requests in flight can reorder a retried batch; use 1 to 5'],
    ['max.in.flight=0', '"0" is not a number of requests in flight; use 1 to 5'],
    ['max.in.flight.requests.per.connection=2.5', '"2.5" is not a number of requests in flight; use 1 to 5'],
  ])('refuses kafka.producer %s with the reason that value has', (value, why) => {
    const error = refusal(() => load({}, { OUTBOX_RELAY_KAFKA_PRODUCER: value }));
    expect(error.message).toContain(why);
  });

  it.each(['snappy', 'lz4', 'zstd'])('refuses kafka.compression %s with kafka.client kafkajs, naming both', (codec) => {
    const error = refusal(() => load({ 'kafka.client': 'kafkajs', 'kafka.compression': codec }));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toBe(`kafka.compression ${codec} is not supported by kafka.client kafkajs (it supports none, gzip)`);
  });

  it('refuses librdkafka-only settings with kafka.client kafkajs', () => {
    expect(refusal(() => load({ 'kafka.client': 'kafkajs', 'kafka.producer': 'linger.ms=5' })).code).toBe('CONFIG_INVALID');
    expect(refusal(() => load({ 'kafka.client': 'kafkajs', 'kafka.clientRack': 'az-1' })).message).toContain('kafka.clientRack');
    // Set explicitly, from any source: kafkajs would ignore them. Their defaults alone are no reason to refuse.
    expect(refusal(() => load({ 'kafka.client': 'kafkajs', 'kafka.linger': '5ms' })).message).toBe('kafka.linger is a librdkafka setting, which kafka.client kafkajs does not read');
    expect(refusal(() => load({ 'kafka.client': 'kafkajs' }, { OUTBOX_RELAY_KAFKA_BATCH_SIZE: '64KiB' })).message).toContain('kafka.batchSize');
    expect(load({ 'kafka.client': 'kafkajs' }).kafka.client).toBe('kafkajs');
  });

  it('bounds delivery.transactionTimeout by what brokers accept', () => {
    expect(load({ 'delivery.transactionTimeout': '15m' }).delivery.transactionTimeoutMs).toBe(900_000);
    expect(refusal(() => load({ 'delivery.transactionTimeout': '16m' })).message).toContain('at most 15m');
  });
});
