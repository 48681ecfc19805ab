import type { RelayError } from '../errors.js';
import type { OutboxEvent } from '../route/event.js';
import type { DeliveryCallbacks } from './delivery-queue.js';

/**
 * What the source pushes events into: the at-least-once DeliveryQueue, or another delivery guarantee
 * (exactly-once, at-most-once). Each keeps a bounded window and acknowledges events through the callbacks,
 * which is what lets the AckTracker confirm positions; when that happens is what tells the guarantees apart.
 */
export interface Delivery {
  readonly inFlightEvents: number;
  readonly inFlightBytes: number;
  /** Takes an event; false when the window is full and the source should stop reading. */
  push(event: OutboxEvent): boolean;
  /** Resolves when nothing is left to acknowledge (or delivery stopped). */
  whenEmpty(): Promise<void>;
  stop(): void;
}

export interface StrategyCallbacks extends DeliveryCallbacks {
  /**
   * The delivery dropped what it had not committed (an aborted Kafka transaction cannot be re-sent from memory):
   * the source must stream again from the last confirmed position.
   */
  restartSource(error: RelayError): void;
}

export type CreateDelivery = (callbacks: StrategyCallbacks) => Delivery;
