import { spawn } from 'node:child_process';
import type { BenchDatabase } from './fixture.js';
import { medianBy } from './median.js';
import { BIN, BenchRelay, relayEnv, type KafkaClient, type StartupTimes } from './relay-process.js';
import { startupSplit, type StartupSplit } from './startup-split.js';

const median = (values: number[]) => medianBy(values, (v) => v);

export interface ColdStart {
  client: KafkaClient;
  /** Median of the runs, ms from spawn to "streaming from PostgreSQL". */
  medianMs: number;
  runsMs: number[];
  /** Where the median run's time went; undefined when its log lacked a step. */
  split: StartupSplit | undefined;
  idleRssMiB: number;
}

/** Process start → streaming, on an idle slot, a few times (the first run also pays for a cold disk cache). */
export async function measureColdStart(db: BenchDatabase, brokers: string[], client: KafkaClient, slot: string, runs = 3): Promise<ColdStart> {
  const starts: StartupTimes[] = [];
  let idleRssMiB = 0;
  for (let i = 0; i < runs; i++) {
    const relay = new BenchRelay({ url: db.url, brokers, slot, client });
    try {
      await relay.streaming();
      starts.push(relay.startupMs);
      await new Promise((r) => setTimeout(r, 1000));
      idleRssMiB = Math.max(idleRssMiB, relay.peakRssMiB());
    } finally {
      await relay.stop();
    }
  }
  const middle = medianBy(starts, (t) => t.streaming!);
  return { client, medianMs: middle.streaming!, runsMs: starts.map((t) => t.streaming!), split: startupSplit(middle), idleRssMiB };
}

/** Spawn → exit of `outbox-relay --help`: what loading the CLI costs before any connection. */
export async function measureHelpStart(nodeArgs: string[], runs = 3): Promise<{ medianMs: number; runsMs: number[] }> {
  const runsMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const child = spawn(process.execPath, [...nodeArgs, BIN, '--help'], { stdio: 'ignore', env: relayEnv() });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`outbox-relay --help exited with ${code}`);
    runsMs.push(performance.now() - started);
  }
  return { medianMs: median(runsMs), runsMs };
}
