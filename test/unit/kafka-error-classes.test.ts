import { KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { classifyKafkaError, isRecordError, namingRefusedTopics } from '../../src/sink/kafka-errors.js';
import { classifyRdKafkaError } from '../../src/sink/rdkafka-errors.js';
import { printedAclCommands } from '../support/printed-command.js';

/**
 * A record whose timestamp (the mapping's event-time column) lies outside the topic's
 * message.timestamp.before/after.max.ms (Kafka 4 refuses CreateTime more than 1 h ahead by default) is refused
 * with INVALID_TIMESTAMP (32) every time: a record error (isolate, retry.recordMax*, then the poison policy), not
 * an outage retried until retry.maxDuration with "check the brokers".
 */
describe('INVALID_TIMESTAMP is a record error', () => {
  it('librdkafka code 32', () => {
    const error = classifyRdKafkaError(Object.assign(new Error('Broker: Invalid timestamp'), { code: 32 }));
    expect(error.code).toBe('RECORD_INVALID');
    expect(error.retriable).toBe(false);
    expect(isRecordError(error)).toBe(true);
    expect(error.hint).toMatch(/message\.timestamp/);
  });

  it('kafkajs type INVALID_TIMESTAMP', () => {
    const error = classifyKafkaError(Object.assign(new Error('The timestamp of the message is out of acceptable range'), { name: 'KafkaJSProtocolError', type: 'INVALID_TIMESTAMP', retriable: false }));
    expect(error.code).toBe('RECORD_INVALID');
    expect(isRecordError(error)).toBe(true);
    expect(error.hint).toMatch(/message\.timestamp/);
  });
});

/**
 * CORRUPT_MESSAGE (Kafka error 2, librdkafka's ERR_INVALID_MSG): the broker found the request's bytes corrupt (its
 * CRC did not match). Nothing in a record causes that; the Java client and librdkafka retry it. Classed as a record
 * error it sent a good event to the poison policy (dead letter or halt) once retry.recordMax* were spent.
 */
describe('CORRUPT_MESSAGE is an outage (the request is sent again), not a record error', () => {
  it.each([
    ['librdkafka code 2', () => classifyRdKafkaError(Object.assign(new Error('Broker: Invalid message'), { code: 2 })), 2],
    ['kafkajs type CORRUPT_MESSAGE', () => classifyKafkaError(Object.assign(new Error('This message has failed its CRC checksum, exceeds the valid size, or is otherwise corrupt'), { name: 'KafkaJSProtocolError', type: 'CORRUPT_MESSAGE', retriable: true })), 'CORRUPT_MESSAGE'],
  ])('%s', (_, classify, kafkaError) => {
    const error = classify();
    expect({ code: error.code, retriable: error.retriable, record: isRecordError(error), kafkaError: error.details.kafkaError }).toEqual({ code: 'KAFKA_UNAVAILABLE', retriable: true, record: false, kafkaError });
    expect(error.message).toMatch(/^Kafka found the produce request corrupt: /);
    expect(error.hint).toMatch(/CRC/);
  });

  it('INVALID_RECORD (87), a record the broker refuses, stays a record error in both clients', () => {
    expect(classifyRdKafkaError(Object.assign(new Error('Broker: Invalid record'), { code: 87 })).code).toBe('RECORD_INVALID');
    expect(classifyKafkaError(Object.assign(new Error('This record has failed the validation on broker'), { name: 'KafkaJSProtocolError', type: 'INVALID_RECORD', retriable: false })).code).toBe('RECORD_INVALID');
  });
});

// Kafka says only "not authorized": a prefixed ACL and a mistyped aggregate type stopped every table's delivery with
// an error naming no topic. Still an outage (a grant ends it), now naming the refused request's topics.
describe('a produce refused for a topic ACL names the topics of the refused request', () => {
  const events = [{ topic: 'outbox.Ordr' }, { topic: 'outbox.order' }, { topic: 'outbox.Ordr' }];
  it.each([
    ['librdkafka (29)', () => classifyRdKafkaError(Object.assign(new Error('Broker: Topic authorization failed'), { code: 29 }))],
    ['kafkajs', () => classifyKafkaError(Object.assign(new Error('Not authorized to access topics: [Topic authorization failed]'), { name: 'KafkaJSProtocolError', type: 'TOPIC_AUTHORIZATION_FAILED', retriable: false }))],
  ])('%s', (_, classify) => {
    const error = namingRefusedTopics(classify(), events, ['k1:9092', 'k2:9092']);
    expect(error).toMatchObject({ code: 'KAFKA_AUTH', retriable: true, details: { topics: ['outbox.Ordr', 'outbox.order'] } });
    expect(error.message).toMatch(/^Kafka refused access: .*\(the refused request's topics: "outbox\.Ordr", "outbox\.order"\)$/);
    expect(error.hint).toMatch(/^grant the relay's principal WRITE and DESCRIBE on "outbox\.Ordr", "outbox\.order" /);
    // The grant as a shell hands it to kafka-acls.sh: the brokers (the tool has no default) and one --topic each.
    // Before: "kafka-acls.sh --topic;", no command to run.
    expect(printedAclCommands(error.hint!)).toEqual([
      ['kafka-acls.sh', '--bootstrap-server', 'k1:9092,k2:9092', '--add', '--allow-principal', '<principal>', '--operation', 'Write', '--operation', 'Describe', '--topic', 'outbox.Ordr', '--topic', 'outbox.order'],
    ]);
  });

  it('other refusals are left as they are (a SASL login, the transactional id)', () => {
    const transactional = classifyRdKafkaError(Object.assign(new Error('Broker: Transactional Id authorization failed'), { code: 53 }));
    expect(namingRefusedTopics(transactional, events, ['k:9092'])).toBe(transactional);
  });
});

describe('a client property librdkafka refuses is a configuration error, not an outage', () => {
  // Each as librdkafka words it (rdkafka_conf.c); before, all but the first two were retried as KAFKA_UNAVAILABLE
  // for retry.maxDuration (30 min) and then reported with "check the brokers".
  it.each([
    'No such configuration property: "lingerr.ms"',
    'Invalid value "x" for configuration property "linger.ms"',
    'Configuration property "batch.num.messages" value 0 is outside allowed range 1..1000000\n',
    'Configuration property "linger.ms" value 9e+06 is outside allowed range 0..900000\n',
    'Unsupported value "zstd" for configuration property "compression.codec": libzstd not available at build time',
    'Expected bool value for "enable.ssl.certificate.verification": true or false',
    '`retries` must be set >= 1 when `enable.idempotence` is true',
  ])('%s', (message) => {
    const error = classifyRdKafkaError(new Error(message));
    expect({ code: error.code, retriable: error.retriable }).toEqual({ code: 'CONFIG_INVALID', retriable: false });
    expect(error.hint).toMatch(/kafka\.producer/);
  });

  it('a connection error is still an outage', () => {
    expect(classifyRdKafkaError(Object.assign(new Error('Local: Broker transport failure'), { code: -195 })).retriable).toBe(true);
  });
});

describe('kafkajs 2 errors wrapped by its retrier (the relay produces with retries 0)', () => {
  const protocolError = (type: string, code: number) => new KafkaJSProtocolError(Object.assign(new Error(type), { type, code, retriable: true }) as never);

  it.each([
    ['UNKNOWN_TOPIC_OR_PARTITION', 3, 'TOPIC_NOT_FOUND'],
    ['INVALID_RECORD', 87, 'RECORD_INVALID'],
  ])('%s inside KafkaJSNumberOfRetriesExceeded is the record error it is, not an outage', (type, code, relayCode) => {
    const wrapped = new KafkaJSNumberOfRetriesExceeded(protocolError(type, code), { retryCount: 0, retryTime: 100 });
    // Before: only originalError (kafkajs 1.x) was followed; the wrapper has no type, so KAFKA_UNAVAILABLE.
    expect(classifyKafkaError(wrapped)).toMatchObject({ code: relayCode, details: { kafkaError: type } });
  });

  it.each([
    ['NOT_ENOUGH_REPLICAS', 19],
    ['CORRUPT_MESSAGE', 2],
  ])('an outage inside the wrapper stays an outage: %s', (type, code) => {
    const wrapped = new KafkaJSNumberOfRetriesExceeded(protocolError(type, code), { retryCount: 0, retryTime: 100 });
    expect(classifyKafkaError(wrapped)).toMatchObject({ code: 'KAFKA_UNAVAILABLE', retriable: true, details: { kafkaError: type } });
  });
});
