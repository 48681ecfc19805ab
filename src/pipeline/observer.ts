import type { ErrorCode } from '../errors.js';
import type { Lsn } from '../lsn.js';
import type { OutboxEvent } from '../route/event.js';

/** Lifecycle of the relay. `standby`: the slot is held by another instance and we wait to take over. */
export type RelayState = 'starting' | 'standby' | 'streaming' | 'reconnecting' | 'draining' | 'halted' | 'stopped' | 'failed';

/**
 * What the pipeline reports as it runs; metrics and health implement it. Every method is optional so an
 * observer only listens to what it needs.
 */
export interface RelayObserver {
  stateChanged?(state: RelayState): void;
  delivered?(events: readonly OutboxEvent[], latencyMs: number): void;
  confirmed?(lsn: Lsn, commitTimeMs: number | undefined): void;
  inFlight?(events: number, bytes: number): void;
  retrying?(code: ErrorCode): void;
  error?(code: ErrorCode): void;
  reconnected?(): void;
  producerConnected?(connected: boolean): void;
  walPosition?(serverWalEnd: Lsn): void;
}
