import type { ErrorCode, RelayError } from '../errors.js';
import type { Lsn } from '../lsn.js';
import type { Receipt } from '../sink/delivery.js';

/** Lifecycle of the relay. `standby`: the slot is held by another instance and we wait to take over. */
export const RELAY_STATES = ['starting', 'standby', 'streaming', 'reconnecting', 'draining', 'halted', 'stopped', 'failed'] as const;
export type RelayState = (typeof RELAY_STATES)[number];

/**
 * What the pipeline reports as it runs; metrics and health implement it. Every method is optional so an
 * observer only listens to what it needs.
 */
export interface RelayObserver {
  stateChanged?(state: RelayState): void;
  /** `latencyMs`: the produce round trip, undefined when none was timed (see DeliveryCallbacks.delivered). */
  delivered?(receipts: readonly Receipt[], latencyMs: number | undefined): void;
  confirmed?(lsn: Lsn, commitTimeMs: number | undefined): void;
  inFlight?(events: number, bytes: number): void;
  retrying?(code: ErrorCode): void;
  error?(code: ErrorCode): void;
  reconnected?(): void;
  producerConnected?(connected: boolean): void;
  walPosition?(serverWalEnd: Lsn): void;
  /**
   * PostgreSQL sent a transaction committed at `commitTimeMs` at `sentAtMs` (its Begin message; both its clock). Told
   * once its commit was read, once per relay: not again when a later session streams it again (Session.countRead).
   */
  transactionSent?(commitTimeMs: number, sentAtMs: number): void;
  /**
   * The table's include/exclude filters left `rows` of a transaction out: they are confirmed without a record
   * (`table`: schema.table; `commitLsn`: the transaction's, so that a bounded replay counts only the rows of its
   * range). Told as transactionSent is, once per transaction and table.
   */
  filtered?(table: string, rows: number, commitLsn: Lsn): void;
  /** A logical message with a relayed prefix and content came outside a transaction: it carries no event. */
  messageNotRelayed?(prefix: string): void;
  /** at-most-once: Kafka refused a batch handed off after its position was confirmed: its `events` are lost. */
  dropped?(events: number): void;
  /** A poison event was written to the dead-letter topic (`code`: why it could not be produced). */
  deadLettered?(code: ErrorCode): void;
  /** The relay halted (stays up, not ready) or gave up, for this reason. */
  halted?(error: RelayError): void;
}

type ObserverMethod = keyof RelayObserver;
type AnyListener = (...args: never[]) => void;

/** Exhaustive by construction: adding a method to RelayObserver without listing it here fails to compile. */
const OBSERVER_METHODS = Object.keys({
  stateChanged: true,
  delivered: true,
  confirmed: true,
  inFlight: true,
  retrying: true,
  error: true,
  reconnected: true,
  producerConnected: true,
  walPosition: true,
  transactionSent: true,
  filtered: true,
  messageNotRelayed: true,
  dropped: true,
  deadLettered: true,
  halted: true,
} satisfies Record<ObserverMethod, true>) as ObserverMethod[];

/** One observer that forwards every call to each of `observers` (the relay takes a single observer). */
export function combineObservers(...observers: RelayObserver[]): RelayObserver {
  const combined: Partial<Record<ObserverMethod, AnyListener>> = {};
  for (const method of OBSERVER_METHODS) {
    const listeners = observers.flatMap((o) => (o[method] ? [(o[method] as AnyListener).bind(o)] : []));
    if (listeners.length > 0) combined[method] = (...args) => listeners.forEach((listener) => listener(...args));
  }
  return combined as RelayObserver;
}
