import type { Lsn } from '../../../src/lsn.js';

/** The part of a RelayConfig deliveryStrategy reads, for a slot "s" with small limits and fast retries. */
export function strategyConfig(startLsn: Lsn | undefined, guarantee: 'at-least-once' | 'exactly-once'): never {
  return {
    slot: 's',
    startLsn,
    postgres: {},
    kafka: { brokers: ['b'], client: 'rdkafka', deliveryTimeoutMs: 30_000 },
    delivery: { maxInFlightEvents: 100, maxInFlightBytes: 1 << 20, batchMaxEvents: 10, batchMaxBytes: 1 << 20, coalesceMs: 0, transactionTimeoutMs: 60_000 },
    retry: { initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: 1000, recordMaxAttempts: 1, recordMaxDurationMs: 0 },
    statusIntervalMs: 1000,
    values: { 'delivery.guarantee': guarantee },
  } as never;
}
