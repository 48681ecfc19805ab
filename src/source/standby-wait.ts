import pg from 'pg';
import type { Logger } from 'pino';
import type { RetryPolicy } from '../config/types.js';
import { errorMessage } from '../errors.js';
import { backoffDelay, sleep } from '../retry.js';

/** How often a standby looks at the slot: takeover within about this long after the holder let go. */
const POLL_MS = 1000;

/**
 * A standby's wait for the slot, on one ordinary connection that polls `pg_replication_slots.active`. Trying to
 * stream instead would cost a replication login and a walsender per standby per poll (30 pods: ~29 logins/s);
 * the replication connection is opened only once the slot is free. Connection failures are retried with backoff
 * and jitter; the wait ends when the slot is free or gone (the session then says which), or on `signal`.
 */
export class StandbyWait {
  private client: pg.Client | undefined;

  constructor(
    private readonly postgres: pg.ClientConfig,
    private readonly slot: string,
    private readonly retry: RetryPolicy,
    private readonly logger: Logger,
  ) {}

  async untilReleased(signal: AbortSignal): Promise<void> {
    for (let failures = 0; !signal.aborted; ) {
      try {
        if (!(await this.slotActive())) break;
        failures = 0;
        await sleep(POLL_MS, signal);
      } catch (err) {
        await this.close();
        const delay = backoffDelay(this.retry, failures++);
        this.logger.debug({ err: errorMessage(err), retryInMs: delay }, 'standby cannot check the slot yet');
        await sleep(delay, signal);
      }
    }
    // Not needed while streaming; a later wait opens a new one.
    await this.close();
  }

  private async slotActive(): Promise<boolean> {
    if (!this.client) {
      const client = new pg.Client(this.postgres);
      client.on('error', () => undefined);
      await client.connect();
      this.client = client;
    }
    const { rows } = await this.client.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [this.slot]);
    return rows[0]?.active === true;
  }

  private async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
