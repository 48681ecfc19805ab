import type { Client, KafkaJS, LibrdKafkaError, Producer } from '@confluentinc/kafka-javascript';
import type { Logger } from 'pino';
import type { KafkaSettings } from '../config/types.js';
import { RelayError, errorMessage } from '../errors.js';
import type { BrokerConnectFailures } from './broker-connect-failures.js';
import { FatalErrorWatch } from './fatal-error-watch.js';
import { lazyRequire } from '../lazy-require.js';
import { useNativeExit } from '../process-exit.js';
import { settlesWithin } from '../retry.js';
import { classifyRdKafkaError, isUnknownTopic } from './rdkafka-errors.js';
import { bootstrapServers, TopicCheck } from './topic-check.js';

export type RdKafkaModule = typeof import('@confluentinc/kafka-javascript');
export type Properties = Record<string, string | number | boolean>;

let loaded: Promise<RdKafkaModule> | undefined;

/**
 * The native module, loaded once. It is built from source at install time; when that failed (no toolchain,
 * OpenSSL headers) the relay cannot use the default client, and says which setting and which fix.
 */
export function loadRdKafka(): Promise<RdKafkaModule> {
  loaded ??= import('@confluentinc/kafka-javascript').then(
    (module) => {
      const exit = nativeAddon().Producer?.outboxExit;
      if (typeof exit === 'function') useNativeExit(exit);
      return ((module as { default?: RdKafkaModule }).default ?? module) as RdKafkaModule;
    },
    (err: unknown) => {
      loaded = undefined;
      throw new RelayError('CONFIG_INVALID', `kafka.client rdkafka (the default) needs the native module of @confluentinc/kafka-javascript, which cannot be loaded: ${errorMessage(err)}`, {
        hint: 'install its build prerequisites (a C++ toolchain, libssl-dev, zlib1g-dev) and reinstall with CKJS_LINKING=dynamic npm ci, or use the pure-JavaScript fallback with --kafka-client kafkajs (OUTBOX_RELAY_KAFKA_CLIENT=kafkajs)',
      });
    },
  );
  return loaded;
}

/** The addon itself (loaded by the module already): the patched one's static exit (src/process-exit.ts). */
const nativeAddon = lazyRequire<{ Producer?: { outboxExit?: (code: number) => void } }>('@confluentinc/kafka-javascript/librdkafka.js');

/** The native module loaded on the spot, for loadConfig, which cannot wait for loadRdKafka's import. */
const rdkafkaNow = lazyRequire<RdKafkaModule>('@confluentinc/kafka-javascript');

/**
 * What librdkafka refuses of `properties` (kafka.producer's), each property read alone: a producer's client stops
 * at the first it refuses, so that one start named one of them. Nothing when the native module cannot be loaded:
 * the sink reports that when it loads it.
 */
export function librdkafkaRefusals(properties: [string, string][]): RelayError[] {
  if (properties.length === 0) return [];
  let module: RdKafkaModule;
  try {
    module = rdkafkaNow();
  } catch {
    return [];
  }
  return properties.flatMap(([name, value]) => {
    try {
      // Only read: a producer connects (and starts its threads) in connect().
      new module.Producer({ [name]: value });
      return [];
    } catch (err) {
      const refused = classifyRdKafkaError(err);
      return refused.code === 'CONFIG_INVALID' ? [refused] : [];
    }
  });
}

/** Where and how to connect: shared by producers, the admin client and the checkpoint reader. */
export function connectionProperties(config: KafkaSettings, clientIdSuffix = ''): Properties {
  const props: Properties = {
    'bootstrap.servers': bootstrapServers(config.brokers),
    'client.id': config.clientId! + clientIdSuffix,
    'socket.timeout.ms': config.requestTimeoutMs,
    // librdkafka drops its bootstrap connection once the first metadata names the brokers; a request that was
    // queued on it (node's connect asks for metadata right away) then waits for the next connection to any
    // broker, which is held back by half of this backoff: 50 ms of a start with the default of 100, at most 11
    // here. After a disconnect the backoff still doubles per attempt up to reconnect.backoff.max.ms (10 s).
    'reconnect.backoff.ms': 20,
  };
  const sasl = config.sasl as { mechanism: string; username: string; password: string } | undefined;
  const ssl = config.ssl;
  props['security.protocol'] = `${sasl ? 'sasl_' : ''}${ssl ? 'ssl' : 'plaintext'}`;
  if (sasl) {
    props['sasl.mechanisms'] = sasl.mechanism.toUpperCase();
    props['sasl.username'] = sasl.username;
    props['sasl.password'] = sasl.password;
  }
  if (typeof ssl === 'object' && ssl.ca) props['ssl.ca.pem'] = ([] as unknown[]).concat(ssl.ca).map(String).join('\n');
  if (config.clientRack) props['client.rack'] = config.clientRack;
  return props;
}

/**
 * The producer every guarantee builds on: idempotent (librdkafka keeps per-partition order and drops nothing
 * across its internal retries; it sends a partition's next request only while fewer than 5 of its records are in
 * flight, so with full batches one at a time), acks=all, the Java client's key partitioning
 * (switching clients keeps per-key order). Internal retries end at kafka.deliveryTimeout: a record without an
 * acknowledgement by then fails its send. The plain sink lifts that bound (rdkafka-sink.ts says why).
 */
export function producerProperties(config: KafkaSettings, clientIdSuffix = ''): Properties {
  return {
    ...connectionProperties(config, clientIdSuffix),
    ...config.producer,
    'enable.idempotence': true,
    acks: -1,
    'allow.auto.create.topics': false,
    partitioner: 'murmur2_random',
    'compression.type': config.compression,
    'linger.ms': config.lingerMs,
    'batch.size': config.batchSizeBytes,
    'request.timeout.ms': config.requestTimeoutMs,
    'message.timeout.ms': config.deliveryTimeoutMs,
  };
}

/** librdkafka's log lines at debug: the delivery engine reports outages once, at warn. */
function rdkafkaLogger(logger: Logger, failures: BrokerConnectFailures | undefined, onLog: LogWatch | undefined): KafkaJS.Logger {
  const log = (message: string, extra?: { fac?: string }) => {
    if (extra?.fac === 'FAIL') failures?.observe(message);
    onLog?.(extra?.fac ?? '', message);
    logger.debug({ rdkafka: true, ...extra }, message);
  };
  const adapter = { info: log, warn: log, error: log, debug: log, namespace: () => adapter, setLogLevel: () => undefined };
  return adapter;
}

/**
 * librdkafka compiles a codec in only when its library was found at build time (zstd needs libzstd-dev; gzip,
 * snappy and lz4 are always there): a codec this build lacks is a configuration error, not an outage.
 */
function checkCodec(module: RdKafkaModule, config: KafkaSettings): void {
  if (config.compression === 'none' || module.features.includes(config.compression)) return;
  throw new RelayError('CONFIG_INVALID', `kafka.compression ${config.compression} is not supported by kafka.client rdkafka as built here (librdkafka ${module.librdkafkaVersion} without ${config.compression})`, {
    hint: `install the codec's headers (libzstd-dev for zstd) and reinstall with CKJS_LINKING=dynamic npm ci, or choose another of: ${module.features.filter((f) => ['gzip', 'snappy', 'lz4', 'zstd'].includes(f)).join(', ')}`,
  });
}

/** Told every librdkafka log line of a client: its facility (e.g. FAIL, ADDPARTS) and its message. */
export type LogWatch = (fac: string, message: string) => void;

/**
 * A KafkaJS-compatible client of librdkafka; its producers and admin clients take librdkafka properties. Its
 * clients' connection failures are logged at debug and, given `failures`, kept there to explain a failed connect;
 * `onLog` is told every line (what librdkafka says only in its log).
 */
export async function createRdKafkaClient(config: KafkaSettings, logger: Logger, clientIdSuffix = '', failures?: BrokerConnectFailures, onLog?: LogWatch): Promise<KafkaJS.Kafka> {
  const module = await loadRdKafka();
  checkCodec(module, config);
  const api = module.KafkaJS;
  return new api.Kafka({ ...connectionProperties(config, clientIdSuffix), kafkaJS: { logger: rdkafkaLogger(logger, failures, onLog) } } as KafkaJS.CommonConstructorConfig);
}

/** A native client's connect under way (connectNative). */
export interface NativeConnect {
  /** False until the binding calls the connect back: a disconnect made before then is never called back (lib/client.js). */
  returned: boolean;
  /** Settles when the connect calls back: with its error, or undefined once connected. Never rejects. */
  result: Promise<LibrdKafkaError | undefined>;
}

/** Connects a native client, librdkafka bounding the connect's metadata request by `timeoutMs`. */
export function connectNative(client: Pick<Client<string>, 'connect'>, timeoutMs: number): NativeConnect {
  const connect = { returned: false } as NativeConnect;
  connect.result = new Promise((resolve) =>
    client.connect({ timeout: timeoutMs }, (err) => {
      connect.returned = true;
      resolve(err ?? undefined);
    }),
  );
  return connect;
}

/** Flushes for up to `flushMs`, then disconnects; never fails (a producer that cannot flush is dropped anyway). */
export function disconnectProducer(producer: Producer, flushMs: number): Promise<void> {
  return new Promise((resolve) => {
    try {
      producer.disconnect(flushMs, () => resolve());
    } catch {
      resolve();
    }
  });
}

/**
 * Lets go of a producer of the KafkaJS-compatible layer through the addon's own disconnect, flushing for `flushMs`:
 * the layer's disconnect() flushes for a fixed 5 s, which with Kafka unreachable outlasted a stop's bounds.
 */
export function disconnectKafkaJsProducer(producer: KafkaJS.Producer, flushMs: number): Promise<void> {
  return disconnectProducer(internalClient(producer), flushMs);
}

/**
 * Aborts the open transaction of a producer of the KafkaJS-compatible layer through the addon, librdkafka waiting
 * up to `timeoutMs`: the layer's abort() waits a fixed 5 s. Bounded in librdkafka, not by no longer awaiting it: the
 * addon's call runs on a worker thread until librdkafka returns, and its disconnect deletes the client under it.
 */
export function abortKafkaJsTransaction(producer: KafkaJS.Producer, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => internalClient(producer).abortTransaction(timeoutMs, (err) => (err ? reject(err) : resolve())));
}

/**
 * The fatal error of a connected producer of the KafkaJS-compatible layer, from its addon's error events: the layer
 * only logs them, and its sends fail with ERR__FATAL or as purged, which name no cause.
 */
export function watchFatalErrors(producer: KafkaJS.Producer): FatalErrorWatch {
  const watch = new FatalErrorWatch();
  internalClient(producer).on('event.error', watch.observe);
  return watch;
}

function internalClient(producer: KafkaJS.Producer): Producer {
  return (producer as unknown as { _getInternalClient(): Producer })._getInternalClient();
}

/**
 * A librdkafka sink's admin client (`admin()`, undefined until it exists), its calls counted for its disconnect.
 * The binding's disconnect is synchronous: it takes the client's lock, which a call in flight holds until librdkafka
 * answers or the call's own bound runs out (5 s for metadata), and so blocks the event loop meanwhile, the shutdown
 * watchdog's timer included; no closeBy bounds it. A close therefore waits for the calls in flight up to its bound
 * (flushWithin) and disconnects only once none is left; one still in flight then is left to the process's exit
 * (exitSoonAfterClose), which does not wait for it.
 */
export class RdKafkaAdmin {
  private readonly inFlight = new Set<Promise<unknown>>();
  /**
   * The topic check of the librdkafka sinks, on this admin's metadata (a fresh request per topic asked). Each
   * request keeps the binding's own bound (5 s), not kafka.requestTimeout (30 s by default): with the brokers down,
   * a first send to a topic fails in 5 s, which at-most-once's dropped batch and the stall check's 5 s race count on
   * (ops.readiness; with 30 s that test's drop came too late in CI).
   */
  readonly topics: TopicCheck;

  constructor(
    private readonly admin: () => KafkaJS.Admin | undefined,
    brokers: KafkaSettings['brokers'],
  ) {
    this.topics = new TopicCheck((topic) => this.call((admin) => admin.fetchTopicMetadata({ topics: [topic] })).then((metadata) => metadata.flatMap((t) => t.partitions)), isUnknownTopic, brokers);
  }

  private call<T>(request: (admin: KafkaJS.Admin) => Promise<T>): Promise<T> {
    const call = request(this.admin()!);
    this.inFlight.add(call);
    const settled = () => this.inFlight.delete(call);
    call.then(settled, settled);
    return call;
  }

  /** Disconnects once no call is in flight, waiting up to `withinMs` for that; never fails (see the class). */
  async disconnect(withinMs: number): Promise<void> {
    const admin = this.admin();
    if (!admin) return;
    await settlesWithin(Promise.allSettled(this.inFlight), withinMs);
    if (this.inFlight.size > 0) return;
    await admin.disconnect().catch(() => undefined);
  }
}
