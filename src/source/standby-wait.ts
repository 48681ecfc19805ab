import type pg from 'pg';
import type { Logger } from 'pino';
import type { RetryPolicy } from '../config/types.js';
import { RelayError, errorMessage } from '../errors.js';
import { OutageLog } from '../outage-log.js';
import { backoffDelay, sleep } from '../retry.js';
import { classifyPgError } from './pg-errors.js';
import type { RepublishScope } from './republish-command.js';
import { boundedQuery, connectBounded } from './pg-timeouts.js';
import { slotHeldSql } from './slot-lock.js';

/** How often a standby looks at the slot: takeover within about this long after the holder let go. */
const POLL_MS = 1000;

/** The poll, as its errors and timeouts name it. */
const POLL = "the standby's check whether the slot is held";

/**
 * A standby's wait for the slot, on one ordinary connection that polls `pg_replication_slots.active` and the
 * slot's lock (slot-lock.ts). Trying to stream instead would cost a replication login and a walsender per
 * standby per poll (30 pods: ~29 logins/s); the replication connection is opened only once the slot is free.
 * Connection failures are retried with backoff and jitter (one warn line when they start, one info line when
 * they end), for at most retry.maxDuration (then RETRIES_EXHAUSTED); a refusal (PG_CONNECT_FAILED) ends the
 * wait with that error. The wait ends when the slot is free or gone (the session then says which), or on `signal`.
 */
export class StandbyWait {
  private client: pg.Client | undefined;

  constructor(
    private readonly postgres: pg.ClientConfig,
    private readonly slot: string,
    private readonly republish: RepublishScope,
    private readonly retry: RetryPolicy,
    private readonly logger: Logger,
  ) {}

  async untilReleased(signal: AbortSignal): Promise<void> {
    const outage = new OutageLog(this.logger, {
      started: 'standby cannot check the slot: retrying',
      ongoing: 'standby still cannot check the slot',
      ended: 'standby can check the slot again',
    });
    while (!signal.aborted) {
      try {
        const held = await this.slotHeld();
        // The outage's end line also when the first check that works finds the slot free.
        outage.recovered();
        if (!held) break;
        await sleep(POLL_MS, signal);
      } catch (err) {
        await this.close();
        // A refusal (a wrong password, a missing database) is not cured by polling: the relay gives up with its fix.
        const error = classifyPgError(err, { slot: this.slot, republish: this.republish, user: this.postgres.user, what: POLL });
        if (!error.retriable) throw error;
        if (outage.down && outage.downMs() >= this.retry.maxDurationMs) {
          throw new RelayError('RETRIES_EXHAUSTED', `standby: PostgreSQL unavailable for ${Math.round(outage.downMs() / 1000)} s: ${errorMessage(err)}`, {
            cause: err,
            hint: 'check that PostgreSQL is up and reachable from here; the relay waits as a standby again when restarted',
          });
        }
        const delay = backoffDelay(this.retry, outage.attempts);
        outage.failed({ code: error.code, err: errorMessage(err), retryInMs: delay });
        await sleep(delay, signal);
      }
    }
    // Not needed while streaming; a later wait opens a new one.
    await this.close();
  }

  private async slotHeld(): Promise<boolean> {
    this.client ??= await connectBounded(this.postgres, POLL, (c) => void c.on('error', () => undefined));
    const rows = await boundedQuery<{ held: boolean }>(this.client, this.postgres, POLL, slotHeldSql(this.slot), [this.slot]);
    return rows[0]?.held === true;
  }

  private async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    // The connection failed or is no longer needed: how its end goes changes nothing.
    await client?.end().catch(() => undefined);
  }
}
