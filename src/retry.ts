import type { RetryPolicy } from './config/types.js';

/** Exponential backoff with full jitter: a random delay up to min(maxDelay, initial * 2^attempt), never below initial/2. */
export function backoffDelay(policy: Pick<RetryPolicy, 'initialDelayMs' | 'maxDelayMs'>, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(attempt, 30));
  const floor = Math.min(ceiling, policy.initialDelayMs / 2);
  return Math.round(floor + random() * (ceiling - floor));
}

/** Waits for `promise` at most `ms`: true if it settled in time. The timer is cleared either way (no process held open). */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const timer = new AbortController();
  try {
    return await Promise.race([promise.then(() => true), sleep(ms, timer.signal).then(() => false)]);
  } finally {
    timer.abort();
  }
}

/** Waits for `promise` until `signal` aborts: true if it settled first (resolved or rejected: the caller awaits it for which). */
export async function settlesUnlessAborted(promise: Promise<unknown>, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  let onAbort!: () => void;
  const aborted = new Promise<boolean>((resolve) => {
    onAbort = () => resolve(false);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** What unlessAborted gives when the signal came first. */
export const ABORTED = Symbol('aborted');

/**
 * `start()`'s outcome (its rejection thrown), or ABORTED once `signal` aborts, without `start` called when it had
 * already: a stop does not wait for a call it cannot cut short (a connect to an unreachable broker, a read of the
 * checkpoint topic, which librdkafka ends only at their own timeouts). The call left behind is the stopper's to end
 * (closing its client, or the process exiting); how it then fails is that doing, and ignored.
 */
export async function unlessAborted<T>(start: () => Promise<T>, signal: AbortSignal): Promise<T | typeof ABORTED> {
  if (signal.aborted) return ABORTED;
  const work = start();
  if (await settlesUnlessAborted(work, signal)) return work;
  work.catch(() => undefined);
  return ABORTED;
}

/** A sleep that an AbortSignal cuts short (shutdown must not wait out a 15 s backoff). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
