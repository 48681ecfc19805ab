import type { RelayError } from '../errors.js';
import { idFields } from '../route/logged-id.js';
import { namedEvent } from '../route/logged-id.js';

/**
 * Why the relay halted, as /readyz and `outbox-relay status` show it: an on-call engineer must not need the logs
 * to learn which event stopped the relay and what fixes it.
 */
export interface HaltReport {
  code: string;
  message: string;
  fix: string | null;
  /** The poison event's id, when one event caused the halt: longer than 300 characters, its start (idFields). */
  eventId: string | null;
  /** A cut id's length and SHA-256, to find its row by. */
  eventIdLength?: number;
  eventIdSha256?: string;
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
    ...(typeof eventId === 'string' ? idFields(eventId) : { eventId: null }),
    commitLsn: typeof lsn === 'string' ? lsn : null,
    at: now.toISOString(),
  };
}

/**
 * The event a halt stopped at, as the halt's log line names it in its message: `event "<id>" (commit LSN 0/1A2B3C8)`,
 * what an on-call engineer greps for and skips from; undefined when no one event caused the halt.
 */
export function haltedEvent(error: RelayError): string | undefined {
  const { eventId, lsn } = error.details;
  if (!('eventId' in error.details) || typeof lsn !== 'string') return undefined;
  return `${namedEvent(eventId)} (commit LSN ${lsn})`;
}
