import type { RetryPolicy } from '../config/types.js';
import type { OutboxEvent } from '../route/event.js';
import { backoffDelay } from '../retry.js';

interface RetryState {
  attempts: number;
  sinceMs: number;
}

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
  private readonly started = new WeakMap<OutboxEvent, RetryState>();
  /** nextAcrossRestarts' event, by its commit LSN and id, and its retries. */
  private restarted: { key: string; state: RetryState } | undefined;
  /** refusedUnfound's events, by commit LSN and id, each with the attempts that request made its count. */
  private unfound = new Map<string, RetryState>();

  constructor(private readonly policy: RetryPolicy) {}

  next(event: OutboxEvent, nowMs = Date.now()): RecordRetryStep {
    const state = this.started.get(event) ?? { attempts: 0, sinceMs: nowMs };
    this.started.set(event, state);
    return this.step(state, nowMs);
  }

  /**
   * As next(), for an event streamed again between its attempts (exactly-once retries a record by restarting the
   * source: the event is a new object each time), known by its commit LSN and id. One at a time: exactly-once
   * stops at the first record Kafka refuses, so a different event starts its own count.
   */
  nextAcrossRestarts(event: OutboxEvent, nowMs = Date.now()): RecordRetryStep {
    const key = restartKey(event);
    const carried = this.unfound.get(key);
    // Found: the refusals refusedUnfound counted were of this record, or of none still refused.
    this.unfound.clear();
    if (carried) this.restarted = { key, state: carried };
    else if (this.restarted?.key !== key) this.restarted = { key, state: { attempts: 0, sinceMs: nowMs } };
    return this.step(this.restarted.state, nowMs);
  }

  /**
   * exactly-once: Kafka refused a request of `events`, whose refused record the relay did not look for (its session
   * ended first): an attempt of each, as refusedWithOthers counts one, which nextAcrossRestarts counts once a later
   * session finds the record. Uncounted, every session that ended so was an attempt more than recordMaxAttempts.
   * Only this request's events are kept (the record it was refused for is one of them), with what an earlier such
   * request or nextAcrossRestarts counted for them.
   */
  refusedUnfound(events: readonly OutboxEvent[], nowMs = Date.now()): void {
    const unfound = new Map<string, RetryState>();
    for (const event of events) {
      const key = restartKey(event);
      const before = this.unfound.get(key) ?? (this.restarted?.key === key ? this.restarted.state : undefined);
      unfound.set(key, { attempts: (before?.attempts ?? 0) + 1, sinceMs: before?.sinceMs ?? nowMs });
    }
    this.unfound = unfound;
  }

  private step(state: RetryState, nowMs: number): RecordRetryStep {
    state.attempts++;
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

/** An event across source restarts (streamed again, it is a new object): its commit LSN and id. */
function restartKey(event: OutboxEvent): string {
  return `${event.txn.commitLsn}/${event.eventId}`;
}
