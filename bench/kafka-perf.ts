import { spawn } from 'node:child_process';
import { ensureKafkaToolsJars } from '../stack/index.js';
import { CpuMeter, type CpuReport } from './cpu.js';

export interface KafkaPerfResult {
  eventsPerSecond: number;
  /** Bytes per record sent: the relay's key + value + header bytes, as one value (no key, no headers). */
  recordBytes: number;
  /** The Java producer's own settings besides the defaults. */
  properties: Record<string, string>;
  cpu: CpuReport;
}

/** Acknowledged by every in-sync replica, idempotent: the guarantees the relay's sink asks for. */
const PROPERTIES = { acks: 'all', 'enable.idempotence': 'true' };
const SAMPLE_MS = 100;

/**
 * The sink-side limit measured by Kafka itself: `org.apache.kafka.tools.ProducerPerformance` (what
 * kafka-producer-perf-test.sh runs) from the broker's own release, the Java producer at its defaults otherwise
 * (batching, linger, 5 requests in flight), unthrottled. It sends no keys and no headers, so its values are
 * padded to the relay's whole record size. The first tenth of the records warms the JVM up and is left out
 * (Kafka 4's --warmup-records; 3.x reports the whole run).
 */
export async function kafkaProducerPerformance(version: string, brokers: string[], topic: string, records: number, recordBytes: number, brokerPid: number | undefined): Promise<KafkaPerfResult> {
  const jars = ensureKafkaToolsJars(version);
  const modern = Number(version.split('.')[0]) >= 4;
  const props = { 'bootstrap.servers': brokers.join(','), ...PROPERTIES };
  const args = [
    '-Xmx256m', // what kafka-run-class.sh gives the tools
    '-cp', `${jars}/*`,
    'org.apache.kafka.tools.ProducerPerformance',
    '--topic', topic,
    '--num-records', String(records),
    '--record-size', String(recordBytes),
    '--throughput', '-1',
    ...(modern ? ['--warmup-records', String(Math.floor(records / 10)), '--command-property'] : ['--producer-props']),
    ...Object.entries(props).map(([k, v]) => `${k}=${v}`),
  ];
  const meter = new CpuMeter();
  const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  meter.track('broker', brokerPid);
  meter.track('ProducerPerformance', child.pid, true);
  const sampler = setInterval(() => meter.sample(), SAMPLE_MS);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(sampler);
  const cpu = meter.finish();
  if (code !== 0) throw new Error(`ProducerPerformance exited with ${code}:\n${out}`);
  // "40000 steady state records sent, 2376.4 records/sec ..." (Kafka 4) or the whole run's "50000 records sent, ...".
  const summary = /steady state records sent, ([\d.]+) records\/sec/.exec(out) ?? /\d+ records sent, ([\d.]+) records\/sec.*99\.9th/.exec(out);
  if (!summary) throw new Error(`no summary line in ProducerPerformance's output:\n${out}`);
  return { eventsPerSecond: Number(summary[1]), recordBytes, properties: PROPERTIES, cpu };
}
