import type { RelayError } from '../errors.js';

/**
 * Why the relay halted, as /readyz and `outbox-relay status` show it: an on-call engineer must not need the logs
 * to learn which event stopped the relay and what fixes it.
 */
export interface HaltReport {
  code: string;
  message: string;
  fix: string | null;
  /** The poison event, when one event caused the halt. */
  eventId: string | null;
  /** Commit LSN of that event's transaction: `slot advance` skips it from commitLsn + 1. */
  commitLsn: string | null;
  at: string;
}

export function haltReport(error: RelayError, now = new Date()): HaltReport {
  const { eventId, lsn } = error.details;
  return {
    code: error.code,
    message: error.message,
    fix: error.hint ?? null,
    eventId: typeof eventId === 'string' ? eventId : null,
    commitLsn: typeof lsn === 'string' ? lsn : null,
    at: now.toISOString(),
  };
}
