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

  /**
   * `event` was in a request of several that Kafka refused for one of its records: that refusal is the first
   * attempt of the one it was (which only producing them one by one tells), so each of them starts at one.
   * Without it a record first refused beside others was produced once more than recordMaxAttempts, and its dead
   * letter's outbox-dlq-attempts was one short.
   */
  refusedWithOthers(event: OutboxEvent, nowMs = Date.now()): void {
    if (!this.started.has(event)) this.started.set(event, { attempts: 1, sinceMs: nowMs });
  }
}
