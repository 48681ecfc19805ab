import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { KafkaSettings } from '../../src/config/types.js';
import type { RelayError } from '../../src/errors.js';
import { isCollateral } from '../../src/sink/kafka-errors.js';
import type { SinkRecord } from '../../src/sink/sink.js';

/**
 * librdkafka's native producer as far as RdKafkaSink uses it. disconnect() behaves as the binding's does
 * (lib/producer.js: flush, then lib/client.js Client.prototype.disconnect): a disconnect called while another is
 * under way never calls its callback (`if (!this._isDisconnecting && this._client)`).
 */
class FakeNativeProducer {
  static made: FakeNativeProducer[] = [];
  readonly listeners = new Map<string, ((...args: unknown[]) => void)[]>();
  readonly produced: { opaque: number; value: string }[] = [];
  /** A record librdkafka refuses synchronously (as one larger than message.max.bytes). */
  refuse: ((value: string) => boolean) | undefined;
  private disconnecting = false;
  disconnects = 0;
  /** The flush time each disconnect was given. */
  readonly flushTimeouts: number[] = [];
  /** How long the client's disconnect takes after the flush. */
  disconnectMs = 5;
  constructor() {
    FakeNativeProducer.made.push(this);
  }
  on(event: string, fn: (...args: unknown[]) => void) {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), fn]);
    return this;
  }
  emit(event: string, ...args: unknown[]) {
    for (const fn of this.listeners.get(event) ?? []) fn(...args);
  }
  /** Set: connect() answers only once it resolves (a broker slow to answer). */
  static connectGate: Promise<void> | undefined;
  connect(_opts: unknown, cb: (err: unknown) => void) {
    void (FakeNativeProducer.connectGate ?? Promise.resolve()).then(() => setImmediate(() => cb(null)));
  }
  setPollInBackground() {}
  produce(_topic: string, _p: null, v: Buffer | null, _k: unknown, _t: unknown, opaque: number) {
    const value = String(v);
    if (this.refuse?.(value)) throw Object.assign(new Error('Broker: Message size too large'), { code: 10 });
    this.produced.push({ opaque, value });
    return true;
  }
  disconnect(timeout: number, cb: () => void) {
    this.disconnects++;
    this.flushTimeouts.push(timeout);
    // flush(), then the client's disconnect
    setImmediate(() => {
      if (this.disconnecting) return;
      this.disconnecting = true;
      setTimeout(cb, this.disconnectMs);
    });
  }
}

/** Topics whose metadata request fails (a broker that does not answer it yet). */
const metadataFails = new Set<string>();
/** Topics whose metadata names no leader for their partition 1 (its leader's broker down). */
const leaderless = new Set<string>();
/** Topics whose metadata request is answered only once the promise settles. */
const metadataWaits = new Map<string, Promise<void>>();

vi.mock('../../src/sink/rdkafka-client.js', async (original) => ({
  ...(await original<typeof import('../../src/sink/rdkafka-client.js')>()),
  createRdKafkaClient: async () => ({
    admin: () => ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      fetchTopicMetadata: async ({ topics }: { topics: string[] }) => {
        for (const t of topics) await metadataWaits.get(t);
        if (topics.some((t) => metadataFails.has(t))) throw new Error('Local: Broker transport failure (fake)');
        return topics.map((name) => ({ name, partitions: [0, 1].map((partitionId) => ({ partitionId, leader: partitionId === 1 && leaderless.has(name) ? -1 : 1 })) }));
      },
    }),
  }),
  loadRdKafka: async () => ({ Producer: FakeNativeProducer, CODES: { ERRORS: { ERR__FATAL: -150 } } }),
}));

const { RdKafkaSink } = await import('../../src/sink/rdkafka-sink.js');
type Sink = Awaited<ReturnType<typeof RdKafkaSink.create>>;

const settings = { brokers: ['b:9092'], clientId: 'test', requestTimeoutMs: 30_000, deliveryTimeoutMs: 30_000, compression: 'none', lingerMs: 1, batchSizeBytes: 1_000_000, producer: {} } as unknown as KafkaSettings;
const record = (i: number): SinkRecord => ({ topic: 'orders', key: `k${i}`, value: Buffer.from(`${i}`), headers: {} });
const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

/** Each send's outcome as it stands: 'pending', 'resolved' or the error's code. */
function watchAll(sends: Promise<void>[]): string[] {
  const outcomes = sends.map(() => 'pending');
  sends.forEach((s, i) => s.then(() => (outcomes[i] = 'resolved'), (err: RelayError) => (outcomes[i] = `${err.code}${err.retriable ? ' (retriable)' : ''}`)));
  return outcomes;
}

/** A sink on a fresh fake producer, connected; the producer it made. */
async function connectedSink(): Promise<{ sink: Awaited<ReturnType<typeof RdKafkaSink.create>>; producer: FakeNativeProducer }> {
  FakeNativeProducer.made = [];
  const sink = await RdKafkaSink.create(settings, pino({ level: 'silent' }));
  await sink.connect();
  return { sink, producer: FakeNativeProducer.made[0]! };
}

describe('RdKafkaSink: a send that cannot hand over all its records', () => {
  // With several sends in flight, the records of a later one would otherwise reach a partition ahead of the
  // failed send's, whose re-send the engine makes only once it has the failure: out of commit order.
  it('a record librdkafka refuses: that send and every send made before its failure was reported hand over nothing more; sends after it go out', async () => {
    const { sink, producer } = await connectedSink();
    producer.refuse = (value) => value === 'big';
    const first = { topic: 'orders', key: 'k', value: Buffer.from('x1'), headers: {} };
    const outcomes = watchAll([sink.send([first, { ...first, value: Buffer.from('big') }, { ...first, value: Buffer.from('x2') }]), sink.send([{ ...first, value: Buffer.from('x3') }])]);
    await tick();
    expect(producer.produced.map((p) => p.value)).toEqual(['x1']);
    // A send made while the failure is known to the sink but not yet reported: held too.
    const later = watchAll([sink.send([{ ...first, value: Buffer.from('x4') }])]);
    await tick();
    producer.emit('delivery-report', null, { opaque: producer.produced[0]!.opaque });
    await tick();
    expect([...outcomes, ...later]).toEqual(['RECORD_TOO_LARGE', 'KAFKA_UNAVAILABLE (retriable)', 'KAFKA_UNAVAILABLE (retriable)']);
    expect(producer.produced.map((p) => p.value)).toEqual(['x1']);
    // The engine's re-sends, made after the report, go out in order.
    const again = [sink.send([{ ...first, value: Buffer.from('x2') }]), sink.send([{ ...first, value: Buffer.from('x3') }])];
    await tick();
    expect(producer.produced.map((p) => p.value)).toEqual(['x1', 'x2', 'x3']);
    for (const p of producer.produced.slice(1)) producer.emit('delivery-report', null, { opaque: p.opaque });
    await Promise.all(again);
    await sink.close();
  });

  it('a topic check that fails: the sends made before its failure was reported hand over nothing', async () => {
    const { sink, producer } = await connectedSink();
    metadataFails.add('payments');
    const outcomes = watchAll([sink.send([{ topic: 'payments', key: 'k', value: Buffer.from('p1'), headers: {} }]), sink.send([record(1)])]);
    await tick();
    expect(outcomes).toEqual(['KAFKA_UNAVAILABLE (retriable)', 'KAFKA_UNAVAILABLE (retriable)']);
    expect(producer.produced).toEqual([]);
    metadataFails.clear();
    const again = sink.send([{ topic: 'payments', key: 'k', value: Buffer.from('p1'), headers: {} }]);
    await tick();
    expect(producer.produced.map((p) => p.value)).toEqual(['p1']);
    producer.emit('delivery-report', null, { opaque: producer.produced[0]!.opaque });
    await again;
    await sink.close();
  });
});

describe('RdKafkaSink: a fatal producer error with several sends in flight', () => {
  it('every send settles, and the producer is disconnected once', async () => {
    FakeNativeProducer.made = [];
    const sink = await RdKafkaSink.create(settings, pino({ level: 'silent' }));
    await sink.connect();
    const outcomes: (string | RelayError)[] = ['pending', 'pending'];
    const sends = [sink.send([record(0)]), sink.send([record(1)])];
    sends.forEach((s, i) => s.then(() => (outcomes[i] = 'resolved'), (err: RelayError) => (outcomes[i] = err)));
    await tick();
    const producer = FakeNativeProducer.made[0]!;
    expect(producer.produced).toHaveLength(2);
    // The idempotent producer hit a fatal error: the error event, then every queued record fails with it.
    const fatal = Object.assign(new Error('Local: Fatal error'), { code: -150, isFatal: true });
    producer.emit('event.error', fatal);
    for (const { opaque } of producer.produced) producer.emit('delivery-report', fatal, { opaque });
    for (let i = 0; i < 10 && outcomes.includes('pending'); i++) await tick();
    expect(outcomes.map((o) => (typeof o === 'string' ? o : o.code))).toEqual(['KAFKA_UNAVAILABLE', 'KAFKA_UNAVAILABLE']);
    expect(producer.disconnects).toBe(1);
    // The retry gets a new producer.
    const retry = sink.send([record(0)]);
    await tick();
    const next = FakeNativeProducer.made[1]!;
    expect(next).toBeDefined();
    next.emit('delivery-report', null, { opaque: next.produced[0]!.opaque });
    await retry;
    await sink.close();
  });
});

describe('RdKafkaSink: a producer made unusable before it could send (its fatal error event says why)', () => {
  // What the patched addon's error event carries (change 7 of scripts/patch-kafka-client.mjs): librdkafka's C++
  // layer gives a fatal event the error that caused it, and its reason. The queued records are purged; their
  // reports come first, as the addon serves them in the same turn of the event loop.
  const PURGED = Object.assign(new Error('Local: Purged in queue'), { code: -152 });
  async function lostProducer(event: { code: number; message: string }): Promise<RelayError> {
    const { sink, producer } = await connectedSink();
    const sent = sink.send([record(0), record(1)]);
    const failed = sent.then(
      () => undefined,
      (err: RelayError) => err,
    );
    await tick();
    for (const { opaque } of producer.produced) producer.emit('delivery-report', PURGED, { opaque });
    await tick();
    // The binding's LibrdKafkaError (an Error) built from that object.
    producer.emit('event.error', Object.assign(new Error(event.message), { code: event.code, isFatal: true }));
    const error = await failed;
    expect(producer.disconnects).toBe(1);
    await sink.close();
    return error!;
  }

  it('brokers without the idempotent producer: CONFIG_INVALID, not retriable, with librdkafka\'s reason (retried, it was an outage until retry.maxDuration)', async () => {
    const error = await lostProducer({ code: -165, message: 'Local: Required feature not supported by broker: Idempotent producer not supported by any of the 1 connected broker(s): requires Apache Kafka broker version >= 0.11.0' });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.retriable).toBe(false);
    expect(error.message).toContain('Idempotent producer not supported by any of the 1 connected broker(s)');
    expect(error.hint).toContain('Apache Kafka 0.11 or later');
  });

  it('a producer id refused for want of an ACL (CLUSTER_AUTHORIZATION_FAILED): KAFKA_AUTH, retriable, its fix the IdempotentWrite grant (or WRITE on a topic from 2.8), not the credentials', async () => {
    const error = await lostProducer({ code: 31, message: 'Broker: Cluster authorization failed: Failed to acquire transactional PID from broker TxnCoordinator/1: Broker: Cluster authorization failed' });
    expect(error.code).toBe('KAFKA_AUTH');
    expect(error.retriable).toBe(true);
    expect(error.message).toMatch(/^the brokers refused the idempotent producer an id: .*Cluster authorization failed/);
    expect(error.hint).toMatch(/^grant the relay's principal IdempotentWrite on the cluster \(kafka-acls\.sh --bootstrap-server b:9092 --add --allow-principal <principal> --operation IdempotentWrite --cluster\)/);
    expect(error.hint).toContain('WRITE and DESCRIBE on the event topics');
    // Before: the fix of every refusal, which began with the SASL credentials the brokers had accepted.
    expect(error.hint).not.toMatch(/saslMechanism/);
  });

  it('any other cause: KAFKA_UNAVAILABLE, retriable with a new producer, never a record error (those records were refused for another)', async () => {
    const error = await lostProducer({ code: -148, message: 'Local: Gap-less guarantee not satisfied: ProduceRequest for orders [0] with 2 message(s) failed: Broker: Message size too large' });
    expect(error.code).toBe('KAFKA_UNAVAILABLE');
    expect(error.retriable).toBe(true);
    expect(error.message).toContain('Gap-less guarantee not satisfied');
  });
});

describe('RdKafkaSink: a record the broker refused (enable.gapless.guarantee: fatal to the producer)', () => {
  it('replaces the producer at once, without waiting for its error event; a send made before the refusal was reported hands over nothing; later ones go to the new producer', async () => {
    const { sink, producer } = await connectedSink();
    producer.disconnectMs = 200;
    const refused = watchAll([sink.send([record(0)])]);
    await tick();
    producer.emit('delivery-report', Object.assign(new Error('Broker: Message size too large'), { code: 10 }), { opaque: producer.produced[0]!.opaque });
    await tick();
    // The refusal is known to the sink (its producer is being replaced) but not yet reported: this send is held.
    expect(refused).toEqual(['pending']);
    const during = watchAll([sink.send([record(1)])]);
    for (let i = 0; i < 20 && refused[0] === 'pending'; i++) await tick();
    await tick();
    expect([...refused, ...during]).toEqual(['RECORD_TOO_LARGE', 'KAFKA_UNAVAILABLE (retriable)']);
    expect(producer.disconnects).toBe(1);
    expect(FakeNativeProducer.made).toHaveLength(1);
    expect(producer.produced.map((p) => p.value)).toEqual(['0']);
    // The engine's re-send, after the report: a new producer.
    const again = sink.send([record(1)]);
    await tick();
    const next = FakeNativeProducer.made[1]!;
    expect(next.produced.map((p) => p.value)).toEqual(['1']);
    next.emit('delivery-report', null, { opaque: next.produced[0]!.opaque });
    await again;
    await sink.close();
  });
});

describe('RdKafkaSink: a produce refused for a topic ACL (TOPIC_AUTHORIZATION_FAILED, permanent in librdkafka: fatal under enable.gapless.guarantee)', () => {
  it('replaces the producer at once, so the engine\'s re-send goes to a new producer and meets the refusal again, not the dead producer', async () => {
    const { sink, producer } = await connectedSink();
    const refused = watchAll([sink.send([record(0)])]);
    await tick();
    producer.emit('delivery-report', Object.assign(new Error('Broker: Topic authorization failed'), { code: 29 }), { opaque: producer.produced[0]!.opaque });
    for (let i = 0; i < 20 && refused[0] === 'pending'; i++) await tick();
    expect(refused).toEqual(['KAFKA_AUTH (retriable)']);
    expect(producer.disconnects).toBe(1);
    const again = sink.send([record(0)]);
    await tick();
    // Before: the re-send was handed to the dead producer (its fatal event not yet come), a wasted attempt.
    expect(FakeNativeProducer.made).toHaveLength(2);
    const next = FakeNativeProducer.made[1]!;
    next.emit('delivery-report', null, { opaque: next.produced[0]!.opaque });
    await again;
    await sink.close();
  });
});

describe('RdKafkaSink: a send cut off by the replacement of its producer', () => {
  it('fails as collateral: another send broke the producer, which says nothing about the brokers (the engine re-sends it at once)', async () => {
    const { sink, producer } = await connectedSink();
    const errors: (RelayError | undefined)[] = [undefined, undefined];
    const sends = [sink.send([record(0)]), sink.send([record(1)])];
    sends.forEach((s, i) => s.catch((err: RelayError) => (errors[i] = err)));
    await tick();
    // The broker refuses send 1's record while send 0's still waits for its report.
    producer.emit('delivery-report', Object.assign(new Error('Broker: Message size too large'), { code: 10 }), { opaque: producer.produced[1]!.opaque });
    for (let i = 0; i < 20 && errors.includes(undefined); i++) await tick();
    expect(errors.map((e) => e && { code: e.code, retriable: e.retriable, collateral: isCollateral(e) })).toEqual([
      { code: 'KAFKA_UNAVAILABLE', retriable: true, collateral: true },
      { code: 'RECORD_TOO_LARGE', retriable: false, collateral: false },
    ]);
    await sink.close();
  });
});

describe('RdKafkaSink: a send waiting for a new topic\'s metadata while an earlier send loses the producer', () => {
  // The held check ran only before the wait: the send then opened a new producer and wrote its records to a
  // partition ahead of the earlier send's, which the engine re-sends only once it has that failure.
  it('hands over nothing once the metadata comes, to the new producer neither; the engine\'s re-sends go out in order', async () => {
    const { sink, producer } = await connectedSink();
    let answerMetadata!: () => void;
    metadataWaits.set('users', new Promise<void>((resolve) => (answerMetadata = resolve)));
    const user = { topic: 'users', key: 'u', value: Buffer.from('u1'), headers: {} };
    const outcomes = watchAll([sink.send([record(0)]), sink.send([record(1), user])]);
    await tick();
    expect(producer.produced.map((p) => p.value)).toEqual(['0']);
    // The broker refuses send 0's record: fatal under the gap-less guarantee, the producer is replaced.
    producer.emit('delivery-report', Object.assign(new Error('Broker: Message size too large'), { code: 10 }), { opaque: producer.produced[0]!.opaque });
    for (let i = 0; i < 20 && outcomes[0] === 'pending'; i++) await tick();
    expect(outcomes).toEqual(['RECORD_TOO_LARGE', 'pending']);
    answerMetadata();
    for (let i = 0; i < 20 && outcomes[1] === 'pending'; i++) await tick();
    // Before: a new producer had '1' and 'u1', ahead of send 0's re-send, and send 1 waited for their reports.
    expect(FakeNativeProducer.made.slice(1).flatMap((p) => p.produced.map((r) => r.value))).toEqual([]);
    expect(outcomes).toEqual(['RECORD_TOO_LARGE', 'KAFKA_UNAVAILABLE (retriable)']);
    // The engine's re-sends, made after both reports: in order, and neither held.
    const again = [sink.send([record(0)]), sink.send([record(1), user])];
    await tick();
    const next = FakeNativeProducer.made.at(-1)!;
    expect(next.produced.map((p) => p.value)).toEqual(['0', '1', 'u1']);
    for (const p of next.produced) next.emit('delivery-report', null, { opaque: p.opaque });
    await Promise.all(again);
    metadataWaits.clear();
    await sink.close();
  });
});

describe('RdKafkaSink closed with a flush at a stop', () => {
  it("flushes until the stop's closeBy when that comes before its own 5 s bound", async () => {
    const { sink, producer } = await connectedSink();
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      await sink.close({ flush: true, closeBy: Date.now() + 1200 });
    } finally {
      vi.useRealTimers();
    }
    // Before: 5000, past a watchdog 0.5 s after closeBy.
    expect(producer.flushTimeouts).toEqual([1200]);
  });
});

describe('RdKafkaSink after close()', () => {
  // A dead letter still retrying when the relay stops (run.ts closes the sink, DeadLetters' loop goes on until
  // retry.maxDuration) sent through a closed sink: it opened a new native producer nobody closes, whose send
  // never settles while Kafka is down (no message timeout) and which keeps the process from exiting.
  it('refuses a send instead of opening a new producer', async () => {
    FakeNativeProducer.made = [];
    const sink = await RdKafkaSink.create(settings, pino({ level: 'silent' }));
    await sink.connect();
    await sink.close();
    const error = await Promise.race([sink.send([record(0)]).then(() => 'resolved', (err: RelayError) => err), tick().then(() => 'pending')]);
    expect(FakeNativeProducer.made).toHaveLength(1);
    expect(typeof error === 'string' ? error : { code: error.code, retriable: error.retriable }).toEqual({ code: 'KAFKA_UNAVAILABLE', retriable: false });
  });

  // Closed while its producer connected: that producer was stored and never disconnected (its threads kept the
  // process up until the shutdown watchdog), and a send then produced its records on it.
  it.each([
    ['the start\'s connect() (a stop abandons it and closes the sink)', (sink: Sink) => sink.connect()],
    ['a send that opens a producer', (sink: Sink) => sink.send([record(0)])],
  ])('closed while %s connects: that producer is disconnected, and nothing is produced on it', async (_, start) => {
    FakeNativeProducer.made = [];
    let answer!: () => void;
    FakeNativeProducer.connectGate = new Promise((resolve) => (answer = resolve));
    try {
      const sink = await RdKafkaSink.create(settings, pino({ level: 'silent' }));
      const started = start(sink).then(() => 'resolved', (err: RelayError) => err.code);
      await tick();
      expect(FakeNativeProducer.made).toHaveLength(1);
      await sink.close();
      answer();
      expect(await started).toBe('KAFKA_UNAVAILABLE');
      await tick();
      expect({ produced: FakeNativeProducer.made[0]!.produced.length, disconnects: FakeNativeProducer.made[0]!.disconnects }).toEqual({ produced: 0, disconnects: 1 });
    } finally {
      FakeNativeProducer.connectGate = undefined;
    }
  });
});

describe('RdKafkaSink.checkLeaders (at-most-once asks it while idle in an outage that dropped batches)', () => {
  it('asks the brokers each time, cached topics too: a partition without a leader or a failed request is unavailable, every partition led resolves', async () => {
    const { sink } = await connectedSink();
    const outcome = () => sink.checkLeaders(['orders']).then(() => 'resolved', (err: RelayError) => `${err.code}: ${err.message}`);
    leaderless.add('orders');
    expect(await outcome()).toBe('KAFKA_UNAVAILABLE: partitions 1 of topic "orders" have no leader');
    leaderless.clear();
    metadataFails.add('orders');
    expect(await outcome()).toBe('KAFKA_UNAVAILABLE: Kafka produce failed: Local: Broker transport failure (fake)');
    metadataFails.clear();
    expect(await outcome()).toBe('resolved');
    await sink.close();
  });
});

describe('RdKafkaSink: a producer refused its id while idle (no send to report it)', () => {
  // librdkafka asks for the idempotent producer's id as soon as the producer exists; the refusal waited for the
  // first send, maybe hours later, while the relay reported ready.
  const refused = () => Object.assign(new Error('Broker: Cluster authorization failed'), { code: 31, isFatal: true });
  const stats = (state: string) => ({ message: JSON.stringify({ type: 'producer', eos: { idemp_state: state } }) });

  async function lostWhileIdle() {
    const { sink, producer } = await connectedSink();
    const lost: { error: RelayError; check: () => Promise<void> }[] = [];
    sink.watchLost((error, check) => lost.push({ error, check }));
    producer.emit('event.error', refused());
    return { sink, producer, lost };
  }

  it('tells delivery at once, with the IdempotentWrite fix, and lets go of the producer', async () => {
    const { sink, producer, lost } = await lostWhileIdle();
    expect(lost.map((l) => l.error.code)).toEqual(['KAFKA_AUTH']);
    expect(lost[0]!.error.hint).toContain('IdempotentWrite');
    await tick();
    expect(producer.disconnects).toBe(1);
    // The next send opens a new producer.
    const sent = sink.send([record(0)]);
    await tick();
    const next = FakeNativeProducer.made.at(-1)!;
    expect(next).not.toBe(producer);
    next.emit('delivery-report', null, { opaque: next.produced[0]!.opaque });
    await sent;
    await sink.close();
  });

  it('its check resolves once a new producer has its id (librdkafka statistics: eos.idemp_state Assigned), rejects when that one is refused too', async () => {
    const { sink, lost } = await lostWhileIdle();
    const check = (): { outcome: string[]; probe: FakeNativeProducer } => {
      const outcome = watchAll([lost[0]!.check()]);
      return { outcome, probe: FakeNativeProducer.made.at(-1)! };
    };
    const granted = check();
    await tick();
    granted.probe.emit('event.stats', stats('WaitPID'));
    await tick();
    expect(granted.outcome).toEqual(['pending']);
    granted.probe.emit('event.stats', stats('Assigned'));
    await tick();
    expect(granted.outcome).toEqual(['resolved']);
    expect(granted.probe.disconnects).toBe(1);
    const still = check();
    await tick();
    still.probe.emit('event.error', refused());
    await tick();
    expect(still.outcome).toEqual(['KAFKA_AUTH (retriable)']);
    expect(still.probe.disconnects).toBe(1);
    await sink.close();
  });

  // A stop while the check waited for the new producer's id: close() returned and the check went on, its producer
  // open until the connect timeout (up to 10 s), past the stop's closeBy (the shutdown watchdog's exit 1).
  it('close() ends a check under way: the check is refused, its producer disconnected before close() returns; no check starts after it', async () => {
    const { sink, lost } = await lostWhileIdle();
    const outcome = watchAll([lost[0]!.check()]);
    const probe = FakeNativeProducer.made.at(-1)!;
    await tick();
    probe.emit('event.stats', stats('WaitPID'));
    await sink.close({ flush: true, closeBy: Date.now() + 1000 });
    expect({ disconnects: probe.disconnects, flushTimeouts: probe.flushTimeouts }).toEqual({ disconnects: 1, flushTimeouts: [0] });
    await tick();
    expect(outcome).toEqual(['KAFKA_UNAVAILABLE']);
    const made = FakeNativeProducer.made.length;
    const after = watchAll([lost[0]!.check()]);
    await tick();
    expect({ after, made: FakeNativeProducer.made.length }).toEqual({ after: ['KAFKA_UNAVAILABLE'], made });
  });

  it('with a send under way, that send reports it: delivery is not told', async () => {
    const { sink, producer } = await connectedSink();
    const lost: RelayError[] = [];
    sink.watchLost((error) => lost.push(error));
    const failed = sink.send([record(0)]).catch((err: RelayError) => err);
    await tick();
    producer.emit('event.error', refused());
    producer.emit('delivery-report', Object.assign(new Error('Local: Fatal error'), { code: -150 }), { opaque: producer.produced[0]!.opaque });
    expect((await failed)?.code).toBe('KAFKA_AUTH');
    await tick();
    expect(lost).toEqual([]);
    await sink.close();
  });
});
