import type { RetryPolicy } from '../config/types.js';
import type { OutboxEvent } from '../route/event.js';
import { backoffDelay } from '../retry.js';

export interface RecordRetryStep {
  /** Attempts Kafka rejected so far. */
  attempts: number;
  /** Wait this long and produce again; undefined when attempts or time are spent and the poison policy applies. */
  delayMs?: number;
}

/**
 * Bounded retries of one record Kafka rejected (too large, missing topic, invalid): most never succeed, but a
 * topic being created or a broker limit being raised can make the next attempt pass, so the poison policy waits
 * for `recordMaxAttempts` attempts within `recordMaxDurationMs`, with exponential backoff and jitter.
 */
export class RecordRetries {
  private readonly started = new WeakMap<OutboxEvent, { attempts: number; sinceMs: number }>();

  constructor(private readonly policy: RetryPolicy) {}

  next(event: OutboxEvent, nowMs = Date.now()): RecordRetryStep {
    const state = this.started.get(event) ?? { attempts: 0, sinceMs: nowMs };
    state.attempts++;
    this.started.set(event, state);
    const delayMs = backoffDelay(this.policy, state.attempts - 1);
    const spent = state.attempts >= this.policy.recordMaxAttempts || nowMs - state.sinceMs + delayMs > this.policy.recordMaxDurationMs;
    return spent ? { attempts: state.attempts } : { attempts: state.attempts, delayMs };
  }
}
