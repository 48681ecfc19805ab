import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AckTracker } from '../../src/checkpoint/ack-tracker.js';
import { RelayError } from '../../src/errors.js';
import type { OutboxEvent } from '../../src/route/event.js';
import { DeadLetters, DLQ_HEADER } from '../../src/sink/dead-letter.js';
import type { WatchSend } from '../../src/sink/delivery.js';
import type { Sink, SinkRecord } from '../../src/sink/sink.js';
import { EngineHarness, relayCallbacks, settle } from '../support/fakes/engine-harness.js';
import { capturingLogger } from '../support/fakes/relay-setup.js';

const retry = { initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 50, recordMaxAttempts: 1, recordMaxDurationMs: 0 };
const logger = pino({ level: 'silent' });
/** A stop that never comes. */
const running = new AbortController().signal;
/** Without a delivery engine nothing watches the sends for a broker that never answers. */
const unwatched: WatchSend = (sending) => sending;

/** A sink that records what it was given and fails with `failure` while it is set. */
class RecordingSink implements Sink {
  readonly sent: SinkRecord[] = [];
  connected = 0;
  constructor(public failure?: unknown) {}
  async connect() {
    this.connected++;
  }
  async close() {}
  async send(records: readonly SinkRecord[]) {
    if (this.failure) throw this.failure;
    this.sent.push(...records);
  }
}

const txn = new AckTracker(0n).begin(0x2000n, 0, 7);
const event = (extra: Partial<OutboxEvent> = {}): OutboxEvent => ({ topic: 'orders', key: Buffer.from('k'), value: Buffer.from('{"a":1}'), headers: { id: 'e1', type: 'T' }, eventId: 'e1', size: 10, txn, ...extra });
const tooLarge = new RelayError('RECORD_TOO_LARGE', 'too large', { details: { attempts: 3 } });

afterEach(() => {
  vi.useRealTimers();
});

describe('dead letters', () => {
  it('under exactly-once (a sink the relay does not connect) connects it once before the first dead letter', async () => {
    const sink = new RecordingSink();
    const dlq = new DeadLetters(sink, '${topic}.dlq', retry, logger, {}, true);
    expect(await dlq.handle(event(), tooLarge, running, unwatched)).toBe('skip');
    expect(await dlq.handle(event(), tooLarge, running, unwatched)).toBe('skip');
    expect(sink.connected).toBe(1);
    expect(sink.sent).toHaveLength(2);
  });

  it('writes the record unchanged plus the error headers, counts it, and skips the event', async () => {
    const sink = new RecordingSink();
    const counted: string[] = [];
    const dlq = new DeadLetters(sink, '${topic}.dlq', retry, logger, { deadLettered: (code) => counted.push(code) });
    expect(await dlq.handle(event(), tooLarge, running, unwatched)).toBe('skip');
    expect(sink.sent).toHaveLength(1);
    const [record] = sink.sent;
    expect(record!.topic).toBe('orders.dlq');
    expect(record!.key!.toString()).toBe('k');
    expect(record!.value!.toString()).toBe('{"a":1}');
    expect(record!.headers).toEqual({
      id: 'e1',
      type: 'T',
      [DLQ_HEADER.code]: 'RECORD_TOO_LARGE',
      [DLQ_HEADER.message]: 'too large',
      [DLQ_HEADER.attempts]: '3',
      [DLQ_HEADER.lsn]: '0/2000',
      [DLQ_HEADER.topic]: 'orders',
    });
    expect(counted).toEqual(['RECORD_TOO_LARGE']);
  });

  it('an event without a topic is named after its table in ${topic}', async () => {
    const sink = new RecordingSink();
    const dlq = new DeadLetters(sink, '${topic}.dlq', retry, logger);
    await dlq.handle(event({ topic: '', headers: { 'outbox-table': 'public.outbox' } }), new RelayError('RECORD_REQUIRED_NULL', 'NULL key'), running, unwatched);
    expect(sink.sent[0]!.topic).toBe('public.outbox.dlq');
    expect(sink.sent[0]!.headers[DLQ_HEADER.topic]).toBe('');
    expect(sink.sent[0]!.headers[DLQ_HEADER.attempts]).toBe('1');
  });

  it('halts when the dead letter is rejected or Kafka stays unavailable past retry.maxDuration: one error, the dead letter’s code and fix, the event’s id and commit LSN', async () => {
    const lines: { level: number }[] = [];
    const recording = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number }) });
    const poisoned = new RelayError('RECORD_TOO_LARGE', 'cannot produce event e1 (commit LSN 0/2000): too large', { details: { eventId: 'e1', lsn: '0/2000', attempts: 3 } });
    const rejected = new DeadLetters(new RecordingSink(new RelayError('TOPIC_NOT_FOUND', 'no dlq topic', { hint: 'create it' })), 'dlq', retry, recording);
    const decision = await rejected.handle(event(), poisoned, running, unwatched);
    expect(typeof decision === 'object' && decision.halt).toMatchObject({
      code: 'TOPIC_NOT_FOUND',
      message: 'cannot produce event e1 (commit LSN 0/2000): too large; its dead letter could not be written to "dlq": no dlq topic',
      hint: 'create it; on restart the event goes to the poison policy again',
      details: { eventId: 'e1', lsn: '0/2000', poisonCode: 'RECORD_TOO_LARGE', deadLetterTopic: 'dlq' },
    });
    // The halt is the relay's one error line: the dead letter logs none of its own.
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    const unavailable = new RecordingSink(new RelayError('KAFKA_UNAVAILABLE', 'down', { retriable: true }));
    const outage = await new DeadLetters(unavailable, 'dlq', retry, logger).handle(event(), tooLarge, running, unwatched);
    expect(typeof outage === 'object' && outage.halt.code).toBe('KAFKA_UNAVAILABLE');
  });

  it('Kafka unavailable for a while: one warn line when writing the dead letter starts failing, one info line when it is written', async () => {
    const sink = new RecordingSink(new RelayError('KAFKA_UNAVAILABLE', 'down', { retriable: true }));
    const lines: { level: number; msg: string }[] = [];
    const recording = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
    const handled = new DeadLetters(sink, 'dlq', { ...retry, maxDurationMs: 60_000 }, recording).handle(event(), tooLarge, running, unwatched);
    await new Promise((resolve) => setTimeout(resolve, 30));
    sink.failure = undefined;
    expect(await handled).toBe('skip');
    expect(sink.sent).toHaveLength(1);
    expect(lines.filter((l) => l.level >= 40).map((l) => l.msg)).toEqual(['cannot write the dead letter yet: retrying', 'event dead-lettered: continuing']);
    expect(lines.filter((l) => l.msg === 'still cannot write the dead letter').length).toBeGreaterThan(1);
    expect(lines.filter((l) => l.level === 30).map((l) => l.msg)).toEqual(['dead letter written after retrying']);
  });

  it('through the delivery engine, Kafka refusing it for longer than the stall timeout: one outage start line, one end line (not also the engine’s, as for a request Kafka never answered)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const { logger, lines } = capturingLogger('debug');
    const sink = new RecordingSink(new RelayError('KAFKA_UNAVAILABLE', 'down', { retriable: true }));
    const dlq = new DeadLetters(sink, 'dlq', { ...retry, initialDelayMs: 200, maxDelayMs: 400, maxDurationMs: 60_000 }, logger);
    const h = new EngineHarness({ guarantee: 'at-least-once', stallTimeoutMs: 1000, relay: relayCallbacks(logger), poison: (e, error, stop, watch) => dlq.handle(e, error, stop, watch) });
    const { txn: source } = h.begin('m', 0);
    h.push(source, 'bad', new RelayError('RECORD_REQUIRED_NULL', 'payload is NULL (fake)'));
    const end = h.commit(source);
    await settle();
    // Every attempt is answered at once, with an error, for 5 s: five stall timeouts.
    await vi.advanceTimersByTimeAsync(5000);
    sink.failure = undefined;
    await vi.advanceTimersByTimeAsync(1000);
    await h.idle();
    expect(sink.sent).toHaveLength(1);
    expect(h.lastConfirmed).toBe(end);
    // The relay's lines for an outage of the engine's, and the dead letter's own.
    const outageLines = ['Kafka unavailable: holding the confirmed position and retrying', 'Kafka available again: delivery resumed', 'cannot write the dead letter yet: retrying', 'dead letter written after retrying'];
    expect(lines.filter((l) => l.level >= 30 && outageLines.includes(l.msg)).map((l) => l.msg)).toEqual(['cannot write the dead letter yet: retrying', 'dead letter written after retrying']);
  });

  it('a stop ends the retries while Kafka is unavailable: stopped, neither skipped nor a halt, nothing written', async () => {
    const sink = new RecordingSink(new RelayError('KAFKA_UNAVAILABLE', 'down', { retriable: true }));
    // Retries that would outlast any shutdown grace: a backoff of a minute, for a day.
    const dlq = new DeadLetters(sink, 'dlq', { ...retry, initialDelayMs: 60_000, maxDelayMs: 60_000, maxDurationMs: 86_400_000 }, logger);
    const stop = new AbortController();
    const handled = dlq.handle(event(), tooLarge, stop.signal, unwatched);
    setTimeout(() => stop.abort(), 20);
    expect(await handled).toBe('stopped');
    expect(sink.sent).toEqual([]);
  });

  it('never writes a dead letter to the checkpoint topic (${topic} of an event refused for naming it names it again): a halt naming the fix', async () => {
    const sink = new RecordingSink();
    const decision = await new DeadLetters(sink, '${topic}', retry, logger, {}, false, 'ckpt').handle({ ...event(), topic: 'ckpt' }, tooLarge, running, unwatched);
    expect(sink.sent).toEqual([]);
    expect(typeof decision === 'object' && decision.halt.message).toContain('"ckpt" is the relay\'s checkpoint topic');
  });

  it('refuses placeholders other than ${topic}', () => {
    expect(() => new DeadLetters(new RecordingSink(), '${table}.dlq', retry, logger)).toThrow(/uses \$\{table\}, which is not one of its placeholders \(\$\{topic\}\)/);
  });
});
