import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { cacheRoot, repoRoot, runDir } from './paths.js';
import { freePort } from './ports.js';
import { forgetPid, isAlive, onPath, readPid, spawnServer, stopPid, waitUntil } from './processes.js';

/** The newest 4.x release Maven Central served when this was written; KAFKA_VERSION=3.9.1 selects the 3.x line. */
export const DEFAULT_KAFKA_VERSION = '4.4.0';

export interface KafkaOptions {
  name: string;
  version?: string;
  /** Extra broker properties, e.g. `{ 'message.max.bytes': '200000' }`. */
  properties?: Record<string, string>;
  port?: number;
  controllerPort?: number;
  /** KRaft node id; 1 for a single broker. */
  nodeId?: number;
  /** `controller.quorum.voters` of a multi-node cluster; default: this node alone. */
  quorumVoters?: string;
  /** The cluster id every node's storage is formatted with; default: a fresh one. */
  clusterId?: string;
  /** JVM heap (-Xmx) of a small node, e.g. '384m' (three brokers on a 2-core machine); default 1g. */
  heap?: string;
  /**
   * SCRAM users the storage is formatted with (a KRaft cluster keeps them in its metadata log; the storage tool
   * adds them before the first start, when no broker could take an AlterUserScramCredentials request yet).
   */
  scramUsers?: { mechanism: 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; name: string; password: string }[];
  /** Write the classes this JVM loaded to this archive when it exits (ensureKafkaClassArchive's broker only). */
  archiveClassesAtExit?: string;
  /**
   * For a single node that a test kills and starts again: started after a SIGKILL, it was ready only once
   * broker.session.timeout.ms (9 s) had passed (10.7 s against 1.3 s for a first start), as its controller, started
   * with it, refuses the new registration while the killed one's session lasts. This sets 2 s (heartbeats every
   * 0.5 s): ready in 2.2–2.7 s. A frozen node is then fenced and unfenced at once when it thaws after more than 2 s,
   * as a node of a cluster is after its session timeout.
   */
  quickRestart?: boolean;
}

/** Resolves the broker jars through Maven into `.cache/kafka/<version>` once; later calls reuse them. */
export function ensureKafkaJars(version: string): string {
  return resolveJars(join(cacheRoot(), 'kafka', version), version, 'kafka_2.13', []);
}

/**
 * The class-data sharing archive of a broker's classes (the JDK's dynamic AppCDS), beside the jars of its version.
 * Mapped from it, a broker JVM reached ready with about 40 % less CPU (6.7 s to 4.3 s on a 2-core host, 4.9 s to
 * 3.1 s for a small node) and the storage format took 1.0 s instead of 1.6 s; the suite starts some dozens of
 * brokers on 2 cores, where that time is the suite's.
 */
export function kafkaClassArchive(version: string): string {
  return join(cacheRoot(), 'kafka', version, 'broker-classes.jsa');
}

/**
 * Makes kafkaClassArchive(version) once, from a broker started and stopped for it (about 10 s), for `stack.ts fetch`
 * and the integration run's global setup. Only a speed-up: made or not, brokers start (without it, or with one the
 * JVM finds unusable, as after a JDK upgrade, they load their classes as before), so a failure is a line, not an error.
 */
export async function ensureKafkaClassArchive(version: string): Promise<void> {
  const archive = kafkaClassArchive(version);
  if (existsSync(archive)) return;
  // The JVM writes the archive as it exits: into a name of this process's, renamed once whole (another run may make one too).
  const partial = `${archive}.${process.pid}`;
  const broker = new KafkaBroker({ name: `class-archive-${process.pid}`, version, archiveClassesAtExit: partial });
  try {
    await broker.start();
    await broker.stop();
    if (statSync(partial, { throwIfNoEntry: false })?.size) renameSync(partial, archive);
    else console.log(`kafka ${version}: no class archive was written; brokers start without one`);
  } catch (err) {
    console.log(`kafka ${version}: the class archive could not be made (${(err as Error).message}); brokers start without one`);
    await broker.kill();
  } finally {
    broker.destroy();
    rmSync(partial, { force: true });
  }
}

/**
 * The broker jars plus `kafka-tools` (ProducerPerformance, for the bench's producer limit) into
 * `.cache/kafka-tools/<version>`: a directory of their own, so the brokers' classpath stays as it was and a
 * cache fetched before the tools existed stays valid.
 */
export function ensureKafkaToolsJars(version: string): string {
  return resolveJars(join(cacheRoot(), 'kafka-tools', version), version, 'kafka-tools', ['-Dkafka.tools=true']);
}

function resolveJars(dir: string, version: string, artifact: string, mavenArgs: string[]): string {
  const marker = join(dir, '.complete');
  if (existsSync(marker)) return dir;
  if (!onPath('java')) throw new Error('java not found: Apache Kafka needs a JRE 17+ (apt-get install openjdk-17-jre-headless)');
  if (!onPath('mvn')) throw new Error('mvn not found: the Kafka jars are fetched from Maven Central with Maven (apt-get install maven)');
  rmSync(dir, { recursive: true, force: true });
  const major = version.split('.')[0];
  const result = spawnSync(
    'mvn',
    ['-q', '-B', '-f', join(repoRoot, 'stack/kafka/pom.xml'), `-Dkafka.version=${version}`, `-Dkafka.major=${major}`, ...mavenArgs, `-Dout=${dir}`, 'dependency:copy-dependencies'],
    { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' },
  );
  if (result.status !== 0 || !existsSync(join(dir, `${artifact}-${version}.jar`))) {
    throw new Error(`could not resolve org.apache.kafka:${artifact}:${version} from Maven Central:\n${result.stdout}${result.stderr}`);
  }
  writeFileSync(marker, new Date().toISOString());
  return dir;
}

/**
 * A KRaft cluster id: 16 random bytes, URL-safe base64 without padding, as `kafka-storage random-uuid` prints.
 * Kafka's own generator never returns an id starting with '-' (the storage tool would read it as a flag).
 */
export function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

const LOG4J2 = `status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = \${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
`;

const LOG4J1 = `log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=\${kafka.logs.dir}/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
`;

/** A single-node KRaft broker (broker and controller in one JVM) of our own. */
export class KafkaBroker {
  readonly name: string;
  readonly version: string;
  readonly dir: string;
  readonly nodeId: number;
  port: number;
  controllerPort: number;
  private readonly properties: Record<string, string>;
  private readonly options: KafkaOptions;

  constructor(options: KafkaOptions) {
    this.name = `kafka-${options.name}`;
    this.version = options.version ?? process.env.KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION;
    this.dir = join(runDir(), this.name);
    this.properties = options.properties ?? {};
    this.port = options.port ?? 0;
    this.controllerPort = options.controllerPort ?? 0;
    this.nodeId = options.nodeId ?? 1;
    this.options = options;
  }

  get brokers(): string[] {
    return [`127.0.0.1:${this.port}`];
  }

  async start(): Promise<this> {
    await this.launch();
    await this.waitReady();
    return this;
  }

  /**
   * Formats the storage (first start only) and spawns the JVM without waiting for it: the nodes of a cluster
   * must all be launched before any of them can elect a controller and become ready.
   */
  async launch(): Promise<void> {
    const jars = ensureKafkaJars(this.version);
    if (this.port === 0) this.port = await freePort();
    if (this.controllerPort === 0) this.controllerPort = await freePort();
    const props = this.writeConfig();
    const classpath = `${jars}/*`;
    const archive = kafkaClassArchive(this.version);
    // The storage format and the broker map their classes from the archive, except the broker that makes it.
    const shared = !this.options.archiveClassesAtExit && existsSync(archive) ? [`-XX:SharedArchiveFile=${archive}`] : [];
    const archiving = this.options.archiveClassesAtExit ? [`-XX:ArchiveClassesAtExit=${this.options.archiveClassesAtExit}`] : [];
    if (!existsSync(join(this.dir, 'data', 'meta.properties'))) {
      const clusterId = this.options.clusterId ?? randomClusterId();
      const scram = (this.options.scramUsers ?? []).flatMap((u) => ['--add-scram', `${u.mechanism}=[name=${u.name},password=${u.password}]`]);
      execFileSync('java', [...shared, '-cp', classpath, ...this.jvmLogging(), 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props, '--ignore-formatted', ...scram], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    }
    // A small node (several per machine) starts small, collects with one thread and compiles with C1 only: less CPU
    // at start-up, when a restarted node competes with the load a fault test puts on the machine.
    const jvm = this.options.heap ? ['-Xms128m', `-Xmx${this.options.heap}`, '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1'] : ['-Xms256m', '-Xmx1g', '-XX:+UseG1GC'];
    spawnServer(
      this.name,
      'java',
      // Every stop-the-world pause with its end time: the bench tells a broker's GC pause from the relay's stalls.
      [...jvm, ...shared, ...archiving, `-Xlog:gc:file=${this.gcLog}:timemillis`, '-Djava.awt.headless=true', ...this.jvmLogging(), '-cp', classpath, 'kafka.Kafka', props],
      { logFile: join(this.dir, 'stdout.log'), cwd: this.dir },
    );
  }

  /** The broker JVM's GC log: one line per collection, stamped with the epoch ms it ended at. */
  get gcLog(): string {
    return join(this.dir, 'gc.log');
  }

  private jvmLogging(): string[] {
    return [
      `-Dkafka.logs.dir=${this.dir}`,
      `-Dlog4j2.configurationFile=${join(this.dir, 'log4j2.properties')}`,
      `-Dlog4j.configuration=file:${join(this.dir, 'log4j.properties')}`,
    ];
  }

  private writeConfig(): string {
    mkdirSync(join(this.dir, 'data'), { recursive: true });
    const props: Record<string, string> = {
      'process.roles': 'broker,controller',
      'node.id': String(this.nodeId),
      'controller.quorum.voters': this.options.quorumVoters ?? `${this.nodeId}@127.0.0.1:${this.controllerPort}`,
      listeners: `PLAINTEXT://127.0.0.1:${this.port},CONTROLLER://127.0.0.1:${this.controllerPort}`,
      'advertised.listeners': `PLAINTEXT://127.0.0.1:${this.port}`,
      'controller.listener.names': 'CONTROLLER',
      'inter.broker.listener.name': 'PLAINTEXT',
      'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'log.dirs': join(this.dir, 'data'),
      'num.partitions': '1',
      'auto.create.topics.enable': 'false',
      'offsets.topic.replication.factor': '1',
      'offsets.topic.num.partitions': '4',
      'transaction.state.log.replication.factor': '1',
      'transaction.state.log.min.isr': '1',
      'transaction.state.log.num.partitions': '4',
      'min.insync.replicas': '1',
      'group.initial.rebalance.delay.ms': '0',
      'log.flush.interval.messages': '9223372036854775807',
      ...(this.options.quickRestart ? { 'broker.session.timeout.ms': '2000', 'broker.heartbeat.interval.ms': '500' } : {}),
      ...this.properties,
    };
    const file = join(this.dir, 'server.properties');
    writeFileSync(file, Object.entries(props).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
    writeFileSync(join(this.dir, 'log4j2.properties'), LOG4J2);
    writeFileSync(join(this.dir, 'log4j.properties'), LOG4J1);
    return file;
  }

  /** Waits until this node answers metadata requests with a controller elected; the error ends with its log's tail. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const kafka = new Kafka({ clientId: 'stack-probe', brokers: this.brokers, logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 1000 });
    await this.probe(kafka, timeoutMs).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.logTail()}`);
    });
  }

  private logTail(lines = 15): string {
    const tails = ['server.log', 'stdout.log'].map((name) => {
      const file = join(this.dir, name);
      return existsSync(file) ? `--- ${file}:\n${readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')}` : '';
    });
    return tails.filter(Boolean).join('\n');
  }

  private async probe(kafka: Kafka, timeoutMs: number): Promise<void> {
    await waitUntil(
      `Kafka ${this.version} on port ${this.port} (log: ${join(this.dir, 'server.log')})`,
      async () => {
        const pid = this.pid();
        if (pid === undefined || !isAlive(pid)) throw new Error(`the broker exited during start-up; see ${join(this.dir, 'stdout.log')}`);
        const admin = kafka.admin();
        try {
          await admin.connect();
          const cluster = await admin.describeCluster();
          return cluster.brokers.length > 0 && cluster.controller !== null;
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      },
      timeoutMs,
      200,
    );
  }

  pid(): number | undefined {
    return readPid(this.name);
  }

  /** Controlled shutdown (SIGTERM). */
  async stop(): Promise<void> {
    const pid = this.pid();
    if (pid !== undefined) await stopPid(pid, 'SIGTERM', 30_000);
    forgetPid(this.name);
  }

  /** Crash: SIGKILL of the JVM. */
  async kill(): Promise<void> {
    const pid = this.pid();
    if (pid !== undefined) await stopPid(pid, 'SIGKILL');
    forgetPid(this.name);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  destroy(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
