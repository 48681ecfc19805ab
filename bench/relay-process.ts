import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { shebangNodeFlags } from '../stack/bin-flags.js';
import { imageAllocatorEnv } from '../stack/image-allocator.js';
import { repoRoot } from '../stack/index.js';
import { processCpuSeconds } from './cpu.js';

export type KafkaClient = 'kafkajs' | 'rdkafka';

export interface RelayRunOptions {
  url: string;
  brokers: string[];
  slot: string;
  client: KafkaClient;
  /** Extra node flags, e.g. --cpu-prof (after the bin's own). */
  nodeArgs?: string[];
  /** The relay's entry script (default: the built bin, dist/outbox-relay.js), e.g. another build to compare with. */
  entry?: string;
  /** Serve /metrics on this port (default: no HTTP server). */
  httpPort?: number;
}

/** The log lines of a start, in their order; the bench times each from spawn to split a cold start. */
const STARTUP_LINES = {
  started: 'starting outbox-relay',
  kafka: 'connected to Kafka',
  checkpoint: 'checkpoint read',
  streaming: 'streaming from PostgreSQL',
} as const;
type StartupStep = keyof typeof STARTUP_LINES;
export type StartupTimes = Partial<Record<StartupStep, number>>;

/** The built `outbox-relay` bin: `npm run build`'s bundle (scripts/build-bin.mjs). */
export const BIN = join(repoRoot, 'dist/outbox-relay.js');

/** The node flags of the built `outbox-relay` bin (its shebang's). */
export const binNodeFlags = () => shebangNodeFlags(BIN);

/** The bench's environment plus the image's allocator (jemalloc, from the Dockerfile), for every relay it runs. */
export const relayEnv = (): NodeJS.ProcessEnv => ({ ...process.env, ...imageAllocatorEnv() });

/** The built relay (`dist/`) as the image runs it (its allocator too), with its start time, resources and log lines observable. */
export class BenchRelay {
  readonly startedAt = performance.now();
  /** ms from spawn to each start-up log line seen (STARTUP_LINES). */
  readonly startupMs: StartupTimes = {};
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined;
  private readonly child: ChildProcess;
  private readonly stderr: string[] = [];
  private streamingWaiters: (() => void)[] = [];

  private readonly httpPort: number | undefined;

  constructor(options: RelayRunOptions) {
    this.httpPort = options.httpPort;
    const entry = options.entry ?? BIN;
    const args = [
      ...shebangNodeFlags(entry),
      ...(options.nodeArgs ?? []),
      entry,
      'run',
      '--postgres-url', options.url,
      '--kafka-brokers', options.brokers.join(','),
      '--slot', options.slot,
      '--kafka-client', options.client,
      '--http-port', String(options.httpPort ?? 0),
      '--status-interval', '100ms',
    ];
    this.child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: relayEnv() });
    const copyTo = process.env.BENCH_RELAY_STDOUT;
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      // For a look at what the relay printed (its log, or --trace-gc lines): appended, every relay of the run.
      if (copyTo) appendFileSync(copyTo, `${this.child.pid} ${line}\n`);
      if (this.startupMs.streaming === undefined) this.noteStartup(line);
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    void this.exited.then((code) => {
      this.exitCode = code;
      if (code !== 0 && code !== null) console.error(`relay exited with ${code}:\n${this.stderr.join('\n')}`);
    });
  }

  /** ms from spawn to the "streaming from PostgreSQL" log line. */
  get streamingAfterMs(): number | undefined {
    return this.startupMs.streaming;
  }

  private noteStartup(line: string): void {
    for (const step of Object.keys(STARTUP_LINES) as StartupStep[]) {
      if (this.startupMs[step] !== undefined || !line.includes(`"${STARTUP_LINES[step]}"`)) continue;
      this.startupMs[step] = performance.now() - this.startedAt;
      if (step === 'streaming') for (const w of this.streamingWaiters) w();
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  streaming(): Promise<void> {
    if (this.streamingAfterMs !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.streamingWaiters.push(resolve));
  }

  /** Peak resident set (VmHWM) so far, in MiB. */
  peakRssMiB(): number {
    const kb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'))?.[1]);
    return kb / 1024;
  }

  /** User + system CPU seconds so far. */
  cpuSeconds(): number {
    return processCpuSeconds(this.pid) ?? NaN;
  }

  /** The relay's own /metrics (needs `httpPort`). */
  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.httpPort!}/metrics`)).text();
  }

  async stop(): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }
}
