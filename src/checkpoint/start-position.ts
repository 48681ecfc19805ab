import type pg from 'pg';
import { RelayError } from '../errors.js';
import { formatLsn, parseLsn, type Lsn } from '../lsn.js';
import { withClient } from '../ops/connection.js';

export interface StartInputs {
  slot: string;
  /** --from-lsn: a replay, or a forward skip. */
  requested: Lsn | undefined;
  /** The delivered position from the checkpoint store, when it was read. */
  checkpoint: Lsn | undefined;
  /** The slot's confirmed_flush_lsn: the oldest position it can still stream from. */
  slotConfirmed: Lsn;
}

/**
 * Where streaming starts. A requested LSN wins, but PostgreSQL would silently move one below the slot's confirmed
 * position forward, so that is refused with the oldest replayable LSN instead. Otherwise the checkpoint, when it
 * is ahead of a slot kept behind by a replay window (or not yet confirmed after an exactly-once commit): every
 * transaction whose commit record starts before it is delivered, and PostgreSQL skips exactly those.
 * `undefined`: the slot's own position.
 */
export function chooseStart(inputs: StartInputs): Lsn | undefined {
  const { requested, checkpoint, slotConfirmed } = inputs;
  if (requested !== undefined) {
    if (requested < slotConfirmed) throw outOfWindow(inputs.slot, requested, slotConfirmed);
    return requested;
  }
  return checkpoint !== undefined && checkpoint > slotConfirmed ? checkpoint : undefined;
}

export function outOfWindow(slot: string, requested: Lsn, oldest: Lsn): RelayError {
  return new RelayError('REPLAY_OUT_OF_WINDOW', `cannot replay from ${formatLsn(requested)}: slot "${slot}" can only stream from ${formatLsn(oldest)} on (oldest replayable LSN; a slot never rewinds)`, {
    hint:
      `replay from ${formatLsn(oldest)} or later, or re-send older events that are still in the outbox table: ` +
      `outbox-relay republish --since <timestamp> | --ids <id,…>. To replay further back in the future, run with a larger --replay-window`,
    details: { requestedLsn: formatLsn(requested), oldestReplayableLsn: formatLsn(oldest) },
  });
}

/** The slot's confirmed position on an ordinary connection; 0 when the slot is missing (the session's checks say so). */
export async function slotConfirmedLsn(postgres: pg.ClientConfig, slot: string): Promise<Lsn> {
  return withClient(postgres, async (client) => {
    const { rows } = await client.query<{ lsn: string | null }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    return rows[0]?.lsn ? parseLsn(rows[0].lsn) : 0n;
  });
}
