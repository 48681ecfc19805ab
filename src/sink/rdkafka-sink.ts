import type { KafkaJS, LibrdKafkaError, Producer, ProducerGlobalConfig } from '@confluentinc/kafka-javascript';
import type { Logger } from 'pino';
import type { KafkaSettings } from '../config/types.js';
import { RelayError } from '../errors.js';
import { collateralFailure } from './kafka-errors.js';
import { connectNative, createRdKafkaClient, disconnectProducer, loadRdKafka, producerProperties, RdKafkaAdmin, type NativeConnect, type Properties, type RdKafkaModule } from './rdkafka-client.js';
import { BrokerConnectFailures } from './broker-connect-failures.js';
import { closedError, flushWithin, refuseIfClosed } from './closed-client.js';
import { classifyRdKafkaError, failedWithoutCause, failsProducer, isFatalRdKafkaError, lostProducerError, producerRefusal } from './rdkafka-errors.js';
import { ProduceCalls, type NativeProducer } from './rdkafka-produce.js';
import { FatalErrorWatch } from './fatal-error-watch.js';
import type { CloseOptions, PlainSink, SinkRecord } from './sink.js';
import type { TopicCheck } from './topic-check.js';

/** How long close() and a producer replacement wait for queued records before disconnecting. */
const DISCONNECT_FLUSH_MS = 5000;

/**
 * The longest one connection attempt's metadata request may take (kafka.requestTimeout when shorter). The binding
 * runs it on a libuv worker that nothing can cut short, so it holds the process on its way out: a SIGTERM while
 * the brokers were unreachable exited only when the binding's default (30 s) ran out, past the default
 * shutdownGrace. The relay retries attempts with backoff anyway.
 */
const CONNECT_ATTEMPT_MAX_MS = 10_000;

/** How often the producer-id check's producer reports its state (statistics.interval.ms; see checkProducerId). */
const CHECK_STATS_MS = 100;

/** One native producer and what belongs to it alone. */
interface Connected {
  producer: Producer;
  calls: ProduceCalls;
  /** The producer's fatal error, from its error events: the next failed send replaces the producer. */
  fatal: FatalErrorWatch;
  /**
   * The close under way: every send that failed on this producer awaits the same one. The binding never calls
   * back a disconnect() made while another is in progress (lib/client.js), so a second one would never settle.
   */
  closing?: Promise<void>;
}

/** A producer-id check under way (checkProducerId), for close() to end. */
interface RunningCheck {
  /** Rejects the check's wait; the check then disconnects its producer. */
  stop: (error: RelayError) => void;
  /** The check's producer's connect: until it has returned, a disconnect of the producer is never called back. */
  connecting: NativeConnect;
  /** Settles once the check's producer is disconnected. */
  ended: Promise<void>;
}

/**
 * The Sink on librdkafka (`@confluentinc/kafka-javascript`, the default client, built from source at install
 * time), on its native producer API with one counter object per send() for the delivery reports
 * (rdkafka-produce.ts), not the KafkaJS-compatible layer's promise per record. With the addon `npm ci` patches
 * (scripts/patch-kafka-client.mjs) a send is one native call per run of records to the same topic, their headers
 * encoded in one Buffer, and the delivery reports carry only the error and the send's id; an unpatched addon takes
 * `produce()` per record. Encoding, batching and partitioning run in native threads.
 * `send` resolves when every record of the batch has its delivery report; a delivery report with an error is
 * final for its record. Up to four sends in flight:
 * librdkafka's idempotent producer keeps records in produce() order per partition across its internal retries,
 * so the engine only has to call produce() in commit order, which `enqueue` makes strict (each call hands its
 * records over only after the calls before it did, or one whose topic check answers sooner would overtake an
 * earlier one: seen at every start, when the first calls all wait for metadata), and no call hands over anything
 * behind one that could not hand over all its records (see send()).
 */
export class RdKafkaSink implements PlainSink {
  readonly pipelineDepth = 4;
  private connected: Connected | undefined;
  private readonly admin: KafkaJS.Admin;
  private readonly adminCalls: RdKafkaAdmin;
  private readonly topics: TopicCheck;
  private adminConnected = false;
  private warnedUnpatched = false;
  /** Set by close(): no producer is opened again (one a late send opened would never be closed). */
  private closed = false;
  /** Settles when the newest send has enqueued its records: the next one enqueues after it. */
  private enqueued: Promise<unknown> = Promise.resolve();
  /** Sends called so far: each send's number is its place in the call order. */
  private sends = 0;
  /** The send whose records could not all be handed over, until its failure is reported to its caller. */
  private failedHandOver: number | undefined;
  /** Sends numbered below this were called before a failed hand-over or a lost producer was reported: they hand over nothing. */
  private heldBelow = 0;
  /** send() calls not yet settled: while there are some, they report a fatal error of the producer (lostIdle). */
  private sending = 0;
  /** Producer-id checks under way: close() ends them (their own bound is the connect timeout, up to 10 s). */
  private readonly checks = new Set<RunningCheck>();
  /** Told of a producer lost with no send to report it (watchLost). */
  private lost: ((error: RelayError, check: () => Promise<void>) => void) | undefined;

  private constructor(
    private readonly module: RdKafkaModule,
    kafka: KafkaJS.Kafka,
    private readonly properties: Properties,
    private readonly connectTimeoutMs: number,
    private readonly logger: Logger,
    private readonly failures: BrokerConnectFailures,
    private readonly brokers: KafkaSettings['brokers'],
  ) {
    this.admin = kafka.admin();
    this.adminCalls = new RdKafkaAdmin(() => this.admin, brokers);
    this.topics = this.adminCalls.topics;
  }

  /** Fails with CONFIG_INVALID (exit 2) when the native module cannot be loaded. */
  static async create(config: KafkaSettings, logger: Logger): Promise<RdKafkaSink> {
    const failures = new BrokerConnectFailures(config.brokers);
    const kafka = await createRdKafkaClient(config, logger, '', failures);
    // No message timeout: librdkafka retries a record until it is acknowledged, in order, so a batch never fails
    // for being late while a later one (with several in flight) gets through ahead of it. A broker that stays
    // silent is the delivery engine's stall watchdog's to report after kafka.deliveryTimeout (and to give up on
    // after retry.maxDuration); what still fails a record is final for it (too large, not authorized, fatal).
    //
    // Gap-less: with several requests of a partition in flight, a request the broker refuses for good (a record
    // over the topic's max.message.bytes, an invalid one) made librdkafka renumber the requests behind it and write
    // them, ahead of the refused batch's other records, which the engine sends again after the failure (commit
    // order broken). With it, that refusal is a fatal error that fails everything queued behind it: the sink
    // replaces the producer and the engine re-sends in order.
    const properties = { ...producerProperties(config), 'message.timeout.ms': 0, 'enable.gapless.guarantee': true };
    return new RdKafkaSink(await loadRdKafka(), kafka, properties, Math.min(config.requestTimeoutMs, CONNECT_ATTEMPT_MAX_MS), logger, failures, config.brokers);
  }

  async connect(): Promise<void> {
    try {
      await this.failures.during(async () => {
        if (!this.adminConnected) await this.admin.connect();
        this.adminConnected = true;
        this.connected ??= await this.openProducer();
      });
    } catch (err) {
      throw classifyRdKafkaError(err);
    }
    // Refused its id while connecting: no send is there to report it.
    if (this.connected) this.lostIdle(this.connected);
  }

  watchLost(lost: (error: RelayError, check: () => Promise<void>) => void): void {
    this.lost = lost;
  }

  /**
   * `connected`, the current producer, got its fatal error with no send under way to report it: librdkafka asks for
   * the idempotent producer's id when the producer is created, and its refusal (no IdempotentWrite grant, brokers
   * without idempotence) came while the relay was idle, held until the first send, maybe hours later. Let go of
   * now (the next send opens a new producer), and told to delivery as a send's failure would be.
   */
  private lostIdle(connected: Connected): void {
    const fatal = connected.fatal.fatal;
    if (!fatal || this.connected !== connected || this.sending > 0) return;
    void this.replace(connected);
    this.lost?.(lostProducerError(fatal, this.brokers), () => this.checkProducerId());
  }

  /**
   * Resolves once a new producer gets its id from the brokers, else rejects with why not (its fatal error, or
   * nothing within the connect timeout). librdkafka says so only in its statistics (STATISTICS.md: eos.idemp_state
   * "Assigned"), which the event producer does not run (a JSON document and a wake-up every interval, for its whole
   * life): a producer of its own, with statistics on, is made for the check and closed after it.
   */
  private async checkProducerId(): Promise<void> {
    // A producer made after close() would be closed by nobody's stop.
    if (this.closed) throw closedError();
    const producer = new this.module.Producer({ ...this.properties, 'statistics.interval.ms': CHECK_STATS_MS } as ProducerGlobalConfig);
    const connecting = connectNative(producer, this.connectTimeoutMs);
    let ended!: () => void;
    const check: RunningCheck = { stop: () => undefined, connecting, ended: new Promise((resolve) => (ended = resolve)) };
    this.checks.add(check);
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        check.stop = reject;
        timer = setTimeout(
          () => reject(new RelayError('KAFKA_UNAVAILABLE', `the brokers gave a new idempotent producer no id within ${this.connectTimeoutMs} ms`, { retriable: true })),
          this.connectTimeoutMs,
        );
        producer.on('event.error', (err: LibrdKafkaError) => {
          if (isFatalRdKafkaError(err)) reject(lostProducerError(err, this.brokers));
        });
        producer.on('event.stats', (stats: { message: string }) => {
          if (idempotenceState(stats.message) === 'Assigned') resolve();
        });
        void connecting.result.then((err) => (err ? reject(classifyRdKafkaError(err)) : producer.setPollInBackground(true)));
      });
    } finally {
      clearTimeout(timer);
      // The binding never calls back a disconnect made while its connect is under way (bounded by the timeout).
      await connecting.result;
      await disconnectProducer(producer, 0);
      this.checks.delete(check);
      ended();
    }
  }

  /**
   * A send whose records could not all be handed over (a topic check failed, librdkafka refused a record) fails,
   * and so does every send called before that failure was reported: their records would otherwise reach a
   * partition ahead of the failed send's, which the engine produces again only after it has the failure. Sends
   * called after the report (the engine's re-sends, in order) hand over as usual.
   */
  async send(records: readonly SinkRecord[]): Promise<void> {
    this.sending++;
    try {
      await this.sendInOrder(records);
    } finally {
      // A fatal error that came during sends none of which reported it (their records were acknowledged first) is
      // told as an idle one, once the delivery has their answers (it takes it up only while nothing is in flight).
      const connected = this.connected;
      if (--this.sending === 0 && connected?.fatal.fatal) setImmediate(() => this.lostIdle(connected));
    }
  }

  private async sendInOrder(records: readonly SinkRecord[]): Promise<void> {
    const number = this.sends++;
    const enqueue = this.enqueued.then(() => this.enqueue(records, number));
    // The next send queues behind this one whether it fails or not; its failure is this send's to report (below).
    this.enqueued = enqueue.catch(() => undefined);
    let connected: Connected | undefined;
    try {
      const produced = await enqueue;
      connected = produced.connected;
      await produced.delivered;
    } catch (err) {
      const handOverFailed = this.failedHandOver === number;
      if (handOverFailed) {
        this.failedHandOver = undefined;
        this.heldBelow = this.sends;
      }
      const cause = (err as { cause?: unknown }).cause;
      // A record failed as purged or fatal says only that its producer failed; the producer's fatal error event
      // says why (brokers without the idempotent producer, a principal refused a producer id) and may come after
      // the reports, as the reports of earlier calls may (rdkafka-produce.ts, finish()).
      const lost = connected && failedWithoutCause(cause) ? await connected.fatal.cause() : undefined;
      // A fatal error (e.g. the idempotence sequence broke) leaves the producer unusable: the retry gets a new one.
      // Under the gap-less guarantee a record, or a topic's ACL, the broker refused is fatal too, and the error event
      // that says so may come after this report: replaced now, the engine's re-send does not meet the dead producer
      // first (for a topic ACL it did: every other attempt of the outage failed there, as KAFKA_UNAVAILABLE, not
      // KAFKA_AUTH). (A record librdkafka refused at hand-over never reached a broker and leaves the producer as it was.)
      const dead = connected && (connected.fatal.fatal !== undefined || isFatalRdKafkaError(err) || isFatalRdKafkaError(cause) || (!handOverFailed && failsProducer(cause)));
      if (dead) {
        // Sends called until this failure is reported fail too, as after a failed hand-over: given to the new
        // producer meanwhile, their records would reach a partition ahead of this send's, which the engine re-sends
        // only once it has the failure.
        this.heldBelow = Infinity;
        await this.replace(connected!);
        this.heldBelow = this.sends;
      }
      const error = lost ? lostProducerError(lost, this.brokers) : classifyRdKafkaError(err);
      if (error.code === 'TOPIC_NOT_FOUND') this.topics.forget(records.map((r) => r.topic));
      throw error;
    }
  }

  async checkLeaders(topics: Iterable<string>): Promise<void> {
    try {
      await this.topics.leaders(topics);
    } catch (err) {
      throw classifyRdKafkaError(err);
    }
  }

  async checkTopics(topics: Iterable<string>): Promise<void> {
    try {
      await this.topics.check(topics);
    } catch (err) {
      throw classifyRdKafkaError(err);
    }
  }

  knowsTopic(topic: string): boolean {
    return this.topics.knows(topic);
  }

  /** Resolves once every record is in librdkafka's queue; `delivered` (wrapped, so it is not awaited here) settles with the reports. */
  private async enqueue(records: readonly SinkRecord[], number: number): Promise<{ connected: Connected; delivered: Promise<void> }> {
    this.refuseIfHeld(number);
    let connected: Connected;
    try {
      if (this.closed) throw closedError();
      await this.topics.check(new Set(records.map((r) => r.topic)));
      if (this.closed) throw closedError();
      connected = this.connected ??= await this.openProducer();
    } catch (err) {
      this.failedHandOver = number;
      throw err;
    }
    // Again: an earlier send's failure may have come while this one waited (for a new topic's metadata, a new
    // producer). Its producer lost, these records went to the next one ahead of that send's re-send: out of commit
    // order. Refused as held, not as a failed hand-over of its own: that would also hold the sends made after the
    // earlier failure was reported, which go out as usual.
    this.refuseIfHeld(number);
    const { delivered, handedOver } = connected.calls.produce(records);
    if (!handedOver) this.failedHandOver = number;
    return { connected, delivered };
  }

  /** A send made before an earlier one's failure was reported hands over nothing (see send()). */
  private refuseIfHeld(number: number): void {
    if (this.failedHandOver !== undefined || number < this.heldBelow) {
      throw collateralFailure('not produced: a produce request before it failed (its records not all handed over, or its producer lost), and is sent again first');
    }
  }

  private async openProducer(): Promise<Connected> {
    // dr_cb (not dr_msg_cb): reports without a copy of the value, which the sink does not need.
    const producer = new this.module.Producer({ ...this.properties, dr_cb: true } as ProducerGlobalConfig);
    // The cast: upstream's typings know neither the patched addon's methods nor its batched reports.
    const connected: Connected = {
      producer,
      calls: new ProduceCalls(producer as unknown as NativeProducer, producerRefusal(this.module.CODES.ERRORS)),
      fatal: new FatalErrorWatch(),
    };
    if (!connected.calls.patched && !this.warnedUnpatched) {
      this.warnedUnpatched = true;
      this.logger.warn('the librdkafka client\'s addon is not the one scripts/patch-kafka-client.mjs (run by `npm ci`) rebuilds: every record takes the binding\'s own produce() call, header conversion and delivery report (1.5 to 2 times the CPU per event); run `node scripts/patch-kafka-client.mjs` to rebuild it');
    }
    let firstError: LibrdKafkaError | undefined;
    const onError = (err: LibrdKafkaError) => {
      // The connect callback's own error is generic (a timeout); the first error event says why (e.g. authentication).
      firstError ??= err;
      connected.fatal.observe(err);
      this.logger.debug({ rdkafka: true, code: err.code, fatal: isFatalRdKafkaError(err) }, err.message);
      this.lostIdle(connected);
    };
    producer.on('event.error', onError);
    producer.on('event.log', (log: { severity: number; fac: string; message: string }) => {
      if (log.fac === 'FAIL') this.failures.observe(log.message);
      this.logger.debug({ rdkafka: true, fac: log.fac, severity: log.severity }, log.message);
    });
    producer.on('delivery-report', connected.calls.report);
    const connectError = await connectNative(producer, this.connectTimeoutMs).result;
    if (connectError) {
      await disconnectProducer(producer, DISCONNECT_FLUSH_MS);
      throw firstError ?? connectError;
    }
    await refuseIfClosed(this.closed, () => disconnectProducer(producer, 0));
    // Delivery reports wake the event loop as they arrive: no added latency and no timer firing while idle.
    // setPollInterval(n) would poll from a JS timer instead, delaying every report by up to n ms and waking the
    // process every n ms even with nothing to do. The patched addon has librdkafka's broker thread wake the loop,
    // which serves the reports itself; otherwise librdkafka's background thread serves them and wakes the loop, a
    // thread and a wake-up more per report (scripts/patch-kafka-client.mjs, 4).
    if (!pollOnLoop(producer)) producer.setPollInBackground(true);
    return connected;
  }

  /**
   * Drops `old` (unless already replaced); the next send opens a new producer, so its connect error is that send's.
   * Without a flush: a dead producer delivers nothing more, and a flush waited its whole bound (5 s) for that.
   */
  private async replace(old: Connected): Promise<void> {
    if (this.connected === old) this.connected = undefined;
    await this.closeProducer(old, 0);
  }

  private closeProducer(connected: Connected, flushMs = DISCONNECT_FLUSH_MS): Promise<void> {
    connected.closing ??= disconnectProducer(connected.producer, flushMs).then(() => connected.calls.failOpen());
    return connected.closing;
  }

  async close(options: CloseOptions = { flush: true }): Promise<void> {
    this.closed = true;
    const connected = this.connected;
    this.connected = undefined;
    // A check would otherwise wait out its own bound (the connect timeout, up to 10 s) past the stop's closeBy, and
    // the shutdown watchdog exit 1. Its producer has nothing to flush: disconnected at once, awaited here unless its
    // connect is still under way (the binding calls back no disconnect made before; the check disconnects it once
    // the connect returns, as openProducer does a producer whose connect a close() came during).
    const checks = [...this.checks];
    for (const check of checks) check.stop(closedError());
    await Promise.allSettled([
      connected && this.closeProducer(connected, flushWithin(options, DISCONNECT_FLUSH_MS)),
      this.adminCalls.disconnect(flushWithin(options, DISCONNECT_FLUSH_MS)),
      ...checks.filter((check) => check.connecting.returned).map((check) => check.ended),
    ]);
  }
}

/** The idempotent producer's state in a librdkafka statistics document (eos.idemp_state), if it names one. */
function idempotenceState(json: string): string | undefined {
  try {
    return (JSON.parse(json) as { eos?: { idemp_state?: string } }).eos?.idemp_state;
  } catch {
    return undefined;
  }
}

/** Serves the producer's reports on the event loop when the patched addon can; false when it cannot. */
function pollOnLoop(producer: Producer): boolean {
  const addon = (producer as unknown as NativeProducer)._client;
  return typeof addon?.outboxPollOnLoop === 'function' && addon.outboxPollOnLoop();
}
