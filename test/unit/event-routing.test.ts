import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { compileTopicTemplate } from '../../src/route/topic-template.js';
import type { SourceTransaction } from '../../src/checkpoint/ack-tracker.js';
import type { RelayConfig, TableMapping } from '../../src/config/types.js';
import { AckTracker } from '../../src/checkpoint/ack-tracker.js';
import { RelayError } from '../../src/errors.js';
import { contentTypeOf, parsePgTimestamp } from '../../src/route/envelope.js';
import { compileEventFilter } from '../../src/route/filters.js';
import { compileGlob } from '../../src/route/glob.js';
import { MessageMapper } from '../../src/route/message-mapper.js';
import { compileTopicRouting } from '../../src/route/routing-rules.js';
import { RecordRetries } from '../../src/sink/record-retry.js';
import { utf8Size } from '../support/record-bytes.js';

const columns: TableMapping['columns'] = { id: 'id', key: 'id', payload: 'payload', type: 'event_type', aggregateType: 'aggregate_type' };
const row = (values: Record<string, string | null>) => (column: string) => values[column] ?? null;

describe('globs, routing rules and filters', () => {
  it('a glob matches the whole value, * any run of characters, everything else literally', () => {
    expect(compileGlob('Order*')('OrderPlaced')).toBe(true);
    expect(compileGlob('Order*')('PreOrderPlaced')).toBe(false);
    expect(compileGlob('*.v1')('a.v1')).toBe(true);
    expect(compileGlob('*.v1')('av1')).toBe(false);
    expect(compileGlob('a+b')('a+b')).toBe(true);
    // The literal parts around a star do not overlap; stars match nothing too, and newlines.
    expect(compileGlob('a*a')('a')).toBe(false);
    expect(compileGlob('a*a')('aa')).toBe(true);
    expect(compileGlob('*')('')).toBe(true);
    expect(compileGlob('a**b*')('ab')).toBe(true);
    expect(compileGlob('*b*b')('abab')).toBe(true);
    expect(compileGlob('*b*b')('aba')).toBe(false);
    expect(compileGlob('Order*Placed')('Order\nPlaced')).toBe(true);
  });

  // The type and aggregate type are row data: a RegExp of .* backtracked polynomially in their length (hours for
  // this value), holding the event loop and with it the replication connection, on the same row after every reconnect.
  it('a glob matches a long column value by a scan that ends', () => {
    const value = 'ab'.repeat(50_000);
    // Under a watchdog: a matcher that backtracks would not return by itself, and would hang the test worker.
    const match = (pattern: string) => runInNewContext('match(value)', { match: compileGlob(pattern), value }, { timeout: 10_000 }) as boolean;
    expect(match('*a*b*c')).toBe(false);
    expect(match('*a*b*b')).toBe(true);
    expect(match('a*ba*bc*')).toBe(false);
  });

  it('the first matching rule wins; no match falls back to the template; rule topics are templates too', () => {
    const routing = compileTopicRouting({
      columns,
      topic: 'outbox.${aggregate_type}',
      routes: [{ type: 'PaymentRefunded', topic: 'refunds' }, { type: 'Payment*', topic: 'payments' }, { aggregateType: 'customer', topic: 'crm.${event_type}' }],
    });
    expect(routing.columns.sort()).toEqual(['aggregate_type', 'event_type']);
    expect(routing.render(row({ event_type: 'PaymentRefunded', aggregate_type: 'payment' }))).toBe('refunds');
    expect(routing.render(row({ event_type: 'PaymentReceived', aggregate_type: 'payment' }))).toBe('payments');
    expect(routing.render(row({ event_type: 'Created', aggregate_type: 'customer' }))).toBe('crm.Created');
    expect(routing.render(row({ event_type: 'OrderPlaced', aggregate_type: 'order' }))).toBe('outbox.order');
    // A NULL type matches no type rule.
    expect(routing.render(row({ event_type: null, aggregate_type: 'order' }))).toBe('outbox.order');
  });

  it('include needs a match (NULL never matches), exclude drops matches, both columns must pass', () => {
    const filter = compileEventFilter({ columns, filter: { includeTypes: ['Order*'], excludeTypes: ['*Internal'], excludeAggregateTypes: ['audit'] } })!;
    expect(filter(row({ event_type: 'OrderPlaced', aggregate_type: 'order' }))).toBe(true);
    expect(filter(row({ event_type: 'OrderInternal', aggregate_type: 'order' }))).toBe(false);
    expect(filter(row({ event_type: 'Invoice', aggregate_type: 'order' }))).toBe(false);
    expect(filter(row({ event_type: null, aggregate_type: 'order' }))).toBe(false);
    expect(filter(row({ event_type: 'OrderPlaced', aggregate_type: 'audit' }))).toBe(false);
    expect(filter(row({ event_type: 'OrderPlaced', aggregate_type: null }))).toBe(true);
    expect(compileEventFilter({ columns, filter: {} })).toBeUndefined();
  });
});

describe('payload helpers', () => {
  it('content-type from the payload column type', () => {
    expect([contentTypeOf(114), contentTypeOf(3802), contentTypeOf(17), contentTypeOf(25)]).toEqual(['application/json', 'application/json', 'application/octet-stream', 'text/plain']);
  });

  it('PostgreSQL timestamps in ISO text output, with and without offsets', () => {
    expect(new Date(parsePgTimestamp('2024-05-01 10:11:12.345678+02')).toISOString()).toBe('2024-05-01T08:11:12.345Z');
    expect(new Date(parsePgTimestamp('2024-05-01 10:11:12+05:30')).toISOString()).toBe('2024-05-01T04:41:12.000Z');
    expect(new Date(parsePgTimestamp('2024-05-01 10:11:12')).toISOString()).toBe('2024-05-01T10:11:12.000Z');
    expect(() => parsePgTimestamp('infinity')).toThrow(RelayError);
  });

  // Date.parse read what is not ISO its own way: the record timestamp (and ce_time) carried a time the row never had.
  it('a timestamp that is not ISO, or no date at all, is refused, not read as some other time', () => {
    // A date column, and a year below 100: not 2044.
    expect(new Date(parsePgTimestamp('0044-03-15')).toISOString()).toBe('0044-03-15T00:00:00.000Z');
    // A historic offset keeps its seconds (local mean time).
    expect(new Date(parsePgTimestamp('1900-01-01 00:00:00+00:53:28')).toISOString()).toBe('1899-12-31T23:06:32.000Z');
    for (const text of ['12', '2024-02-30', '2024-05-01 24:00:00', '2016-12-31 23:59:60', '0000-01-01', '0044-03-15 BC', '10000-01-01 00:00:00', '-infinity']) {
      expect(() => parsePgTimestamp(text), text).toThrow(expect.objectContaining({ code: 'RECORD_INVALID' }));
    }
  });
});

describe('record retries', () => {
  const policy = { initialDelayMs: 100, maxDelayMs: 1000, maxDurationMs: 60_000, recordMaxAttempts: 3, recordMaxDurationMs: 10_000 };
  const event = () => ({}) as never;

  it('retries with growing delays until the attempts are spent', () => {
    const retries = new RecordRetries(policy);
    const e = event();
    const first = retries.next(e, 0);
    const second = retries.next(e, 1000);
    expect(first.attempts).toBe(1);
    expect(first.delayMs).toBeGreaterThanOrEqual(50);
    expect(first.delayMs).toBeLessThanOrEqual(100);
    expect(second.delayMs).toBeLessThanOrEqual(200);
    expect(retries.next(e, 2000)).toEqual({ attempts: 3 });
    // Another event has its own count.
    expect(retries.next(event(), 2000).attempts).toBe(1);
  });

  it('stops early when the next attempt would start after recordMaxDuration', () => {
    const retries = new RecordRetries({ ...policy, recordMaxAttempts: 100, recordMaxDurationMs: 5000 });
    const e = event();
    expect(retries.next(e, 0).delayMs).toBeDefined();
    expect(retries.next(e, 4990)).toEqual({ attempts: 2 });
  });

  it('exactly-once: a request refused unfound counts for each of its events, with what each had, and since the first attempt; the record found next carries its count, the others are forgotten', () => {
    const retries = new RecordRetries({ ...policy, recordMaxAttempts: 10, recordMaxDurationMs: 10_000 });
    // An event streamed again is a new object: known by its commit LSN and id.
    const streamed = (id: string) => ({ eventId: id, txn: { commitLsn: 0x100n } }) as never;
    expect(retries.nextAcrossRestarts(streamed('p'), 0).attempts).toBe(1);
    retries.refusedUnfound([streamed('a'), streamed('p')], 1000);
    retries.refusedUnfound([streamed('a'), streamed('p')], 2000);
    expect(retries.nextAcrossRestarts(streamed('p'), 3000).attempts).toBe(4);
    // Counted from p's first attempt (0 ms): the next would start past recordMaxDuration.
    retries.refusedUnfound([streamed('a'), streamed('p')], 9000);
    expect(retries.nextAcrossRestarts(streamed('p'), 9950)).toEqual({ attempts: 6 });
    // a's count went with p's find: a found now starts at one.
    expect(retries.nextAcrossRestarts(streamed('a'), 10_000).attempts).toBe(1);
  });
});

describe('logical-message events', () => {
  const tracker = new AckTracker(0n);
  const txn: SourceTransaction = tracker.begin(0x16b3748n, Date.parse('2024-01-01T00:00:00Z'), 42);
  const config: NonNullable<RelayConfig['messages']> = { prefixes: ['outbox'], topic: 'events.${aggregate_type}', envelope: { mode: 'none' } };
  const message = (content: string | Buffer) => ({ tag: 'message' as const, transactional: true, lsn: 1n, prefix: 'outbox', content: Buffer.isBuffer(content) ? content : Buffer.from(content) });

  it('the metadata line gives id, key, topic and headers; the rest is the payload, byte for byte', () => {
    const mapper = new MessageMapper(config);
    const payload = Buffer.from([0x7b, 0x0a, 0xff]);
    const event = mapper.map(message(Buffer.concat([Buffer.from('{"id":"e1","type":"T","aggregate_type":"order","aggregate_id":"o1","key":"o1","headers":{"trace":"x","n":2}}\n'), payload])), txn);
    expect(event.topic).toBe('events.order');
    expect(event.key!.toString()).toBe('o1');
    expect(event.value!.equals(payload)).toBe(true);
    expect(event.headers).toMatchObject({ id: 'e1', type: 'T', 'aggregate-type': 'order', 'aggregate-id': 'o1', trace: 'x', n: '2', 'content-type': 'application/json', 'outbox-lsn': '0/16B3748' });
    expect(mapper.map(message('{"id":"e2","topic":"explicit"}\n{}'), txn)).toMatchObject({ topic: 'explicit', eventId: 'e2' });
    expect(mapper.map(message('{"id":"e3","topic":"t"}\n'), txn).key!.toString()).toBe('e3');
  });

  it('messages.topic renders each of its fields from the message it maps, none left from the message before', () => {
    const mapper = new MessageMapper({ ...config, topic: 'm.${id}.${type}.${key}.${aggregate_type}.${aggregate_id}.${prefix}' });
    const full = '{"id":"e1","type":"T","key":"k1","aggregate_type":"order","aggregate_id":"o1"}\n{}';
    expect(mapper.map(message(full), txn).topic).toBe('m.e1.T.k1.order.o1.outbox');
    expect(mapper.map(message('{"id":"e2","type":"U","key":1.50,"aggregate_type":"pay","aggregate_id":"p2"}\n{}'), txn).topic).toBe('m.e2.U.1.50.pay.p2.outbox');
    expect(mapper.map(message('{"id":"e3","topic":"own"}\n{}'), txn).topic).toBe('own');
    expect(() => mapper.map(message('{"id":"e4","type":"T","key":"k1","aggregate_type":"order"}\n{}'), txn)).toThrow(
      expect.objectContaining({ code: 'RECORD_REQUIRED_NULL', message: expect.stringContaining('event "e4", commit LSN 0/16B3748): column "aggregate_id" used in the topic template is NULL') }),
    );
    expect(mapper.map(message(full), txn).topic).toBe('m.e1.T.k1.order.o1.outbox');
  });

  it('without a "key" the key is the aggregate id, else the id (docs/event-shaping.md: per-aggregate order)', () => {
    const mapper = new MessageMapper(config);
    expect(mapper.map(message('{"id":"e5","aggregate_type":"order","aggregate_id":"o-7"}\n{}'), txn).key).toBe('o-7');
    expect(mapper.map(message('{"id":"e6","aggregate_type":"order"}\n{}'), txn).key).toBe('e6');
  });

  it('the metadata "headers" never give the relay’s own headers, nor with the envelope its ce_ attributes, where the relay leaves one out', () => {
    const content = '{"id":"e9","aggregate_type":"order","headers":{"type":"Forged","aggregate-id":"o-x","ce_subject":"forged","tenant":"t"}}\n{}';
    const plain = new MessageMapper(config).map(message(content), txn).headers;
    expect([plain.type, plain['aggregate-id'], plain.tenant, plain.ce_subject]).toEqual([undefined, undefined, 't', 'forged']);
    const typed = content.replace('"id":"e9"', '"id":"e9","type":"T"');
    const enveloped = new MessageMapper({ ...config, envelope: { mode: 'cloudevents' } }).map(message(typed), txn).headers;
    expect([enveloped.type, enveloped['aggregate-id'], enveloped.ce_subject, enveloped.ce_type]).toEqual(['T', undefined, undefined, 'T']);
  });

  it('the size counts text as UTF-8 bytes: Müller, a JSON escape, a U+FFFD (a metadata byte that is not UTF-8 is refused: message-metadata-utf8.test.ts), the envelope’s source', () => {
    const replacement = '{"id":"e1","type":"\uFFFD","topic":"t"}\n{}';
    const contents = ['{"id":"e1","aggregate_id":"Müller","topic":"t"}\n{}', '{"id":"e1","topic":"t","headers":{"name":"M\\u00fcller"}}\n{}', replacement, '{"id":"e1","type":"T","topic":"t"}\n{}'];
    const enveloped = new MessageMapper({ ...config, envelope: { mode: 'cloudevents', source: '/shop/Bäckerei' } });
    for (const [i, content] of contents.entries()) {
      const event = (i === 3 ? enveloped : new MessageMapper(config)).map(message(content), txn);
      expect(event.size, String(i)).toBe(utf8Size(event));
    }
  });

  it('metadata values that are not strings: numbers as written, objects and arrays a record error naming the field and the event', () => {
    const mapper = new MessageMapper(config);
    const event = mapper.map(message('{"id":12345678901234567890,"aggregate_type":"order","key":1.50}\n{}'), txn);
    expect(event).toMatchObject({ eventId: '12345678901234567890', key: '1.50' });
    expect(event.headers.id).toBe('12345678901234567890');
    // An "id" that is not a string gives the event no id: the message is named by its prefix and commit LSN then.
    for (const [field, value, named] of [['key', '{"tenant":"a"}', 'event "e7"'], ['topic', '["a"]', 'event "e7"'], ['id', '{"a":1}', 'event without id'], ['headers', '"tenant=a"', 'event "e7"'], ['headers', '[["tenant","a"]]', 'event "e7"']] as const) {
      expect(() => mapper.map(message(`{"id":"e7","aggregate_type":"order","${field}":${value}}\n{}`), txn), field).toThrow(
        expect.objectContaining({ code: 'RECORD_INVALID', message: expect.stringMatching(new RegExp(`prefix "outbox", ${named}, commit LSN 0/16B3748\\).*"${field}"`)) }),
      );
    }
  });

  it('a "topic" of the metadata is checked as a rendered template is: an illegal or empty name is TOPIC_INVALID naming the event', () => {
    const mapper = new MessageMapper(config);
    for (const topic of ['', 'bad topic', 'a/b', '.', '..']) {
      expect(() => mapper.map(message(`{"id":"e8","topic":${JSON.stringify(topic)}}\n{}`), txn), topic).toThrow(
        expect.objectContaining({ code: 'TOPIC_INVALID', message: expect.stringContaining('event "e8"') }),
      );
    }
  });

  it('"." and ".." are refused as topic names (Kafka refuses them), as a literal template at start and as a rendered one', () => {
    for (const template of ['.', '..']) expect(() => compileTopicTemplate(template), template).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    const rendered = compileTopicTemplate('${aggregate_type}');
    expect(() => rendered.render(() => '..')).toThrow(expect.objectContaining({ code: 'TOPIC_INVALID' }));
    expect(rendered.render(() => '...')).toBe('...');
  });

  // Quoted whole, a row value of megabytes made the error (and the dead letter's error header) as large.
  it('an illegal rendered name is quoted whole up to 300 characters, and a longer one by its start and length', () => {
    const rendered = compileTopicTemplate('outbox.${aggregate_type}');
    expect(() => rendered.render(() => 'a b')).toThrow('"outbox.a b" (from template "outbox.${aggregate_type}") is not a legal Kafka topic name');
    let message = '';
    try {
      rendered.render(() => 'x '.repeat(1_000_000));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe(`"outbox.${'x '.repeat(146)}x…" (2000007 characters) (from template "outbox.\${aggregate_type}") is not a legal Kafka topic name`);
  });

  it('so is a logical message’s own "topic", and a timestamp column’s text', () => {
    const long = 'x '.repeat(1_000_000);
    const quoted = `"${'x '.repeat(150)}…" (2000000 characters)`;
    expect(() => new MessageMapper(config).map(message(`{"id":"e8","topic":"${long}"}\n{}`), txn)).toThrow(expect.objectContaining({ message: expect.stringContaining(`event "e8", commit LSN 0/16B3748): ${quoted} is not a legal Kafka topic name (`) }));
    expect(() => parsePgTimestamp(long)).toThrow(`timestamp ${quoted} is not an ISO date and time`);
  });

  it('a logical message refused names an id of 100,000 characters by its first 300 and its length; the details keep it whole', () => {
    const id = 'x'.repeat(100_000);
    let error: RelayError | undefined;
    try {
      new MessageMapper(config).map(message(`{"id":"${id}","topic":"a b"}\n{}`), txn);
    } catch (err) {
      error = err as RelayError;
    }
    expect(error?.message).toMatch(new RegExp(`^logical message \\(prefix "outbox", event "x{300}…" \\(100000 characters\\), commit LSN 0/16B3748\\): "a b" is not`));
    expect(error?.details.eventId).toBe(id);
  });

  // The transaction's headers are formatted once per transaction (transactionHeaders), shared with the row mapper.
  it('each message carries its own transaction’s outbox-lsn, outbox-commit-time and outbox-xid, in the documented order, transactions interleaved', () => {
    const mapper = new MessageMapper(config);
    const other = tracker.begin(0xffffffff00000010n, Date.parse('2025-06-30T23:59:59.999Z'), 4294967295);
    const same = tracker.begin(0x16b3750n, Date.parse('2024-01-01T00:00:00Z'), 43);
    const content = '{"id":"e1","type":"T","aggregate_type":"order","aggregate_id":"o1","content_type":"application/avro"}\n{}';
    const entries = (t: SourceTransaction) => Object.entries(mapper.map(message(content), t).headers);
    const own = { id: 'e1', type: 'T', 'aggregate-type': 'order', 'aggregate-id': 'o1' };
    for (const [t, lsn, time, xid] of [
      [txn, '0/16B3748', '2024-01-01T00:00:00.000Z', '42'],
      [other, 'FFFFFFFF/10', '2025-06-30T23:59:59.999Z', '4294967295'],
      [txn, '0/16B3748', '2024-01-01T00:00:00.000Z', '42'],
      [same, '0/16B3750', '2024-01-01T00:00:00.000Z', '43'],
    ] as const) {
      expect(entries(t), lsn).toEqual(Object.entries({ ...own, 'outbox-lsn': lsn, 'outbox-commit-time': time, 'outbox-xid': xid, 'content-type': 'application/avro' }));
    }
  });

  it('a refused message: its code, message, fix and details exactly', () => {
    let error: RelayError | undefined;
    try {
      new MessageMapper(config).map(message('{"id":"e1","headers":"x"}\n{}'), txn);
    } catch (err) {
      error = err as RelayError;
    }
    expect({ code: error?.code, message: error?.message, hint: error?.hint, details: error?.details }).toEqual({
      code: 'RECORD_INVALID',
      message: 'logical message (prefix "outbox", event "e1", commit LSN 0/16B3748): the metadata\'s "headers" is not a JSON object',
      hint: 'emit events with outbox_emit() from sql/004_emit_event.sql',
      details: { eventId: 'e1', lsn: '0/16B3748', xid: 42, prefix: 'outbox' },
    });
  });

  it('malformed metadata is a record error naming the message and what is wrong, carrying the whole content for the dead letter', () => {
    const mapper = new MessageMapper(config);
    const cases: [string, string, RegExp][] = [
      ['{"id":"e1","type":"T"}', 'RECORD_INVALID', /prefix "outbox", event "e1", commit LSN 0\/16B3748\): no newline between the metadata line and the payload/],
      ['no newline', 'RECORD_INVALID', /prefix "outbox", commit LSN 0\/16B3748\): the metadata line is not JSON/],
      ['not json\n{}', 'RECORD_INVALID', /prefix "outbox", commit LSN 0\/16B3748\): the metadata line is not JSON/],
      ['{"type":"T"}\n{}', 'RECORD_REQUIRED_NULL', /prefix "outbox", event without id, commit LSN 0\/16B3748\): the metadata has no "id"/],
      ['[1]\n{}', 'RECORD_INVALID', /prefix "outbox", commit LSN 0\/16B3748\): the metadata line is not a JSON object/],
    ];
    for (const [content, code, text] of cases) {
      let error: unknown;
      try {
        mapper.map(message(content), txn);
      } catch (err) {
        error = err;
      }
      expect(error, content).toBeInstanceOf(RelayError);
      expect(error, content).toMatchObject({ code, message: expect.stringMatching(text) });
      const dead = mapper.unmappable(message(content), txn, error as RelayError);
      expect(dead.value!.toString()).toBe(content);
      expect(dead.headers['outbox-message-prefix']).toBe('outbox');
    }
  });
});
