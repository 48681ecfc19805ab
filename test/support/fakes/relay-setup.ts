import pino from 'pino';
import type { RetryPolicy } from '../../../src/config/types.js';

/** The settings a Relay with fake sessions and sinks reads; `retry` as the test needs it. */
export function relayConfig(retry: Pick<RetryPolicy, 'initialDelayMs' | 'maxDelayMs' | 'maxDurationMs'>): unknown {
  return {
    slot: 's',
    publication: 'p',
    postgres: {},
    kafka: { brokers: ['b'] },
    retry: { ...retry, recordMaxAttempts: 1, recordMaxDurationMs: 0 },
    shutdownGraceMs: 100,
    statusIntervalMs: 1000,
  };
}

/** A logger whose lines the test reads back. */
export function capturingLogger(level: string): { logger: pino.Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
  return { logger, lines };
}

/** A delivery with nothing in flight that takes every event: for Relay tests about the source side. */
export function idleDelivery(): unknown {
  return { inFlightEvents: 0, inFlightBytes: 0, windowFullMs: 0, windowFullSinceMs: undefined, openSession() {}, push: () => true, committed() {}, endSession() {}, whenIdle: async () => undefined, stop() {} };
}
