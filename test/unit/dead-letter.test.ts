import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AckTracker } from '../../src/checkpoint/ack-tracker.js';
import { RelayError } from '../../src/errors.js';
import type { OutboxEvent } from '../../src/route/event.js';
import { DeadLetters, DLQ_HEADER } from '../../src/sink/dead-letter.js';
import type { KafkaWatch } from '../../src/sink/delivery.js';
import type { Sink, SinkRecord } from '../../src/sink/sink.js';
import { EngineHarness, relayCallbacks, settle } from '../support/fakes/engine-harness.js';
import { capturingLogger } from '../support/fakes/relay-setup.js';

const logger = pino({ level: 'silent' });
/** A stop that never comes. */
const running = new AbortController().signal;
/** Without a delivery engine: nothing watches the sends for a broker that never answers, and no outage outlasts a refusal. */
const unwatched: KafkaWatch = { send: (sending) => sending, backOff: async () => false };

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

const kafkaDown = () => new RelayError('KAFKA_UNAVAILABLE', 'down (fake)', { retriable: true });

/** A request Kafka answers only after `ms` (on faked timers): with `error`, or taking it. */
function answeredAfter(ms: number, error?: RelayError): Promise<void> {
  return new Promise((resolve, reject) => setTimeout(() => (error ? reject(error) : resolve()), ms));
}

afterEach(() => {
  vi.useRealTimers();
});

describe('dead letters', () => {
  it('under exactly-once (a sink the relay does not connect) connects it once before the first dead letter', async () => {
    const sink = new RecordingSink();
    const dlq = new DeadLetters(sink, '${topic}.dlq', logger, {}, true);
    expect(await dlq.handle(event(), tooLarge, running, unwatched)).toBe('skip');
    expect(await dlq.handle(event(), tooLarge, running, unwatched)).toBe('skip');
    expect(sink.connected).toBe(1);
    expect(sink.sent).toHaveLength(2);
  });

  it('writes the record unchanged plus the error headers, counts it, and skips the event', async () => {
    const sink = new RecordingSink();
    const counted: string[] = [];
    const dlq = new DeadLetters(sink, '${topic}.dlq', logger, { deadLettered: (code) => counted.push(code) });
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
    const dlq = new DeadLetters(sink, '${topic}.dlq', logger);
    await dlq.handle(event({ topic: '', headers: { 'outbox-table': 'public.outbox' } }), new RelayError('RECORD_REQUIRED_NULL', 'NULL key'), running, unwatched);
    expect(sink.sent[0]!.topic).toBe('public.outbox.dlq');
    expect(sink.sent[0]!.headers[DLQ_HEADER.topic]).toBe('');
    expect(sink.sent[0]!.headers[DLQ_HEADER.attempts]).toBe('1');
  });

  it('halts when the dead letter is rejected or Kafka stays unavailable past retry.maxDuration: one error, the dead letter’s code and fix, the event’s id and commit LSN', async () => {
    const lines: { level: number }[] = [];
    const recording = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number }) });
    const poisoned = new RelayError('RECORD_TOO_LARGE', 'cannot produce event "e1" (commit LSN 0/2000): too large', { details: { eventId: 'e1', lsn: '0/2000', attempts: 3 } });
    const rejected = new DeadLetters(new RecordingSink(new RelayError('TOPIC_NOT_FOUND', 'no dlq topic', { hint: 'create it' })), 'dlq', recording);
    const decision = await rejected.handle(event(), poisoned, running, unwatched);
    expect(typeof decision === 'object' && decision.halt).toMatchObject({
      code: 'TOPIC_NOT_FOUND',
      message: 'cannot produce event "e1" (commit LSN 0/2000): too large; its dead letter could not be written to "dlq": no dlq topic',
      hint: 'create it; on restart the event goes to the poison policy again',
      details: { eventId: 'e1', lsn: '0/2000', poisonCode: 'RECORD_TOO_LARGE', deadLetterTopic: 'dlq' },
    });
    // The halt is the relay's one error line: the dead letter logs none of its own.
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    const unavailable = new RecordingSink(new RelayError('KAFKA_UNAVAILABLE', 'down', { retriable: true }));
    const outage = await new DeadLetters(unavailable, 'dlq', logger).handle(event(), tooLarge, running, unwatched);
    expect(typeof outage === 'object' && outage.halt.code).toBe('KAFKA_UNAVAILABLE');
  });

  it.each([
    // librdkafka answers a request it could not deliver within its message timeout with an error, and the broker
    // refuses the ones after it at once.
    { order: 'unanswered past the stall timeout, then refused', answer: (call: number, at: number) => (call === 0 ? answeredAfter(3000, kafkaDown()) : at < 6000 ? Promise.reject(kafkaDown()) : Promise.resolve()) },
    { order: 'refused, then unanswered past the stall timeout', answer: (_call: number, at: number) => (at < 3000 ? Promise.reject(kafkaDown()) : answeredAfter(3000)) },
    // Each refusal is answered at once: the stall check must not take the retries for an unanswered request.
    { order: 'refused for longer than the stall timeout', answer: (_call: number, at: number) => (at < 5000 ? Promise.reject(kafkaDown()) : Promise.resolve()) },
  ])('through the delivery engine, a dead letter $order: one outage, one start line, one end line once it is written, counted once', async ({ answer }) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const { logger, lines } = capturingLogger('debug');
    const counted = { errors: [] as string[], ready: [] as boolean[] };
    const sink = new RecordingSink();
    const started = Date.now();
    let calls = 0;
    sink.send = async (records) => {
      await answer(calls++, Date.now() - started);
      sink.sent.push(...records);
    };
    const dlq = new DeadLetters(sink, 'dlq', logger);
    const relay = relayCallbacks(logger, {
      observer: { error: (code) => counted.errors.push(code), producerConnected: (up) => counted.ready.push(up) },
      onPoison: (e, error, stop, kafka) => dlq.handle(e, error, stop, kafka),
    });
    const h = new EngineHarness({ guarantee: 'at-least-once', stallTimeoutMs: 1000, retry: { initialDelayMs: 200, maxDelayMs: 400 }, relay, poison: relay.poison });
    const { txn: source } = h.begin('m', 0);
    h.push(source, 'bad', new RelayError('RECORD_REQUIRED_NULL', 'payload is NULL (fake)'));
    const end = h.commit(source);
    await settle();
    await vi.advanceTimersByTimeAsync(15_000);
    await h.idle();
    expect(sink.sent).toHaveLength(1);
    expect(h.lastConfirmed).toBe(end);
    expect(h.stopped).toEqual([]);
    expect(lines.filter((l) => l.level >= 30).map((l) => `${l.level} ${l.msg}`)).toEqual([
      '40 Kafka unavailable: holding the confirmed position and retrying',
      '40 event dead-lettered: continuing',
      '30 Kafka available again: delivery resumed',
    ]);
    // errors_total: the poison event, once (a Kafka outage is not an error there); readiness: lost once, back once.
    expect(counted).toEqual({ errors: ['RECORD_REQUIRED_NULL'], ready: [false, true] });
  });

  it('through the delivery engine, Kafka refusing it for retry.maxDuration: the halt is the dead letter’s, naming the event, after the outage’s one start line', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const { logger, lines } = capturingLogger('debug');
    const dlq = new DeadLetters(new RecordingSink(kafkaDown()), 'dlq', logger);
    const h = new EngineHarness({ guarantee: 'at-least-once', stallTimeoutMs: 1000, retry: { initialDelayMs: 200, maxDelayMs: 400, maxDurationMs: 5000 }, relay: relayCallbacks(logger), poison: (e, error, stop, kafka) => dlq.handle(e, error, stop, kafka) });
    const { txn: source } = h.begin('m', 0);
    h.push(source, 'bad', new RelayError('RECORD_REQUIRED_NULL', 'payload is NULL (fake)'));
    h.commit(source);
    await settle();
    await vi.advanceTimersByTimeAsync(6000);
    expect(h.stopped.map((e) => [e.code, e.details.eventId, e.details.deadLetterTopic])).toEqual([['KAFKA_UNAVAILABLE', 'bad', 'dlq']]);
    expect(lines.filter((l) => l.level >= 40).map((l) => l.msg)).toEqual(['Kafka unavailable: holding the confirmed position and retrying']);
  });

  it('a stop ends the retries while Kafka is unavailable: stopped, neither skipped nor a halt, nothing written', async () => {
    const sink = new RecordingSink(new RelayError('KAFKA_UNAVAILABLE', 'down', { retriable: true }));
    const dlq = new DeadLetters(sink, 'dlq', logger);
    const stop = new AbortController();
    // A backoff that would outlast any shutdown grace: the stop ends it.
    const backOff = () => new Promise<boolean>((resolve) => stop.signal.addEventListener('abort', () => resolve(false)));
    const handled = dlq.handle(event(), tooLarge, stop.signal, { ...unwatched, backOff });
    setTimeout(() => stop.abort(), 20);
    expect(await handled).toBe('stopped');
    expect(sink.sent).toEqual([]);
  });

  it('never writes a dead letter to the checkpoint topic (${topic} of an event refused for naming it names it again): a halt naming the fix', async () => {
    const sink = new RecordingSink();
    const decision = await new DeadLetters(sink, '${topic}', logger, {}, false, 'ckpt').handle({ ...event(), topic: 'ckpt' }, tooLarge, running, unwatched);
    expect(sink.sent).toEqual([]);
    expect(typeof decision === 'object' && decision.halt.message).toContain('"ckpt" is the relay\'s checkpoint topic');
  });

  it('refuses placeholders other than ${topic}', () => {
    expect(() => new DeadLetters(new RecordingSink(), '${table}.dlq', logger)).toThrow(/uses \$\{table\}, which is not one of its placeholders \(\$\{topic\}\)/);
  });
});
