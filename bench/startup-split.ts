import type { StartupTimes } from './relay-process.js';

/** A start, step by step (ms): what a missed cold-start target is made of. */
export interface StartupSplit {
  /** Spawn → "starting outbox-relay": node, the CLI's modules and the config. */
  loadMs: number;
  /** → "connected to Kafka": the client's modules (loaded on first use) and its connection. */
  kafkaMs: number;
  /**
   * → "checkpoint read" (from the checkpoint topic), when the mode reads one. PostgreSQL's replication connection
   * and its checks, and the slot's bounds, run meanwhile.
   */
  checkpointMs: number | undefined;
  /** → "streaming from PostgreSQL": what of PostgreSQL's part the checkpoint read did not cover, and START_REPLICATION. */
  postgresMs: number;
}

export function startupSplit(t: StartupTimes): StartupSplit | undefined {
  if (t.started === undefined || t.kafka === undefined || t.streaming === undefined) return undefined;
  return { loadMs: t.started, kafkaMs: t.kafka - t.started, checkpointMs: t.checkpoint === undefined ? undefined : t.checkpoint - t.kafka, postgresMs: t.streaming - (t.checkpoint ?? t.kafka) };
}

export function describeStartup(s: StartupSplit): string {
  const ms = (v: number) => `${Math.round(v)} ms`;
  const checkpoint = s.checkpointMs === undefined ? '' : `, reading the checkpoint (PostgreSQL connecting and checked meanwhile) ${ms(s.checkpointMs)}`;
  return `loading node, the CLI and its config ${ms(s.loadMs)}, loading the Kafka client and connecting ${ms(s.kafkaMs)}${checkpoint}, PostgreSQL (the rest of connecting and checks, START_REPLICATION) ${ms(s.postgresMs)}`;
}
