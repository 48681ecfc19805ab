import type pg from 'pg';
import { RelayError, isRelayError } from '../errors.js';
import { formatLsn, parseLsn, type Lsn } from '../lsn.js';
import { withClient } from '../ops/connection.js';
import { classifyPgError } from '../source/pg-errors.js';
import { republishCommand, type RepublishScope } from '../source/republish-command.js';
import { republishSince } from '../source/slot-lost.js';

export interface StartInputs {
  slot: string;
  /** The relay's publication and tables, named in a refusal's republish (republishCommand). */
  republish: RepublishScope;
  /** --start-lsn: a replay, or a forward skip. */
  requested: Lsn | undefined;
  /** The delivered position from the checkpoint store, when it was read. */
  checkpoint: Lsn | undefined;
  /** The commit time the checkpoint records (a refusal's fix names the republish from it). */
  checkpointCommitTimeMs?: number | undefined;
  /** The slot's confirmed_flush_lsn: the oldest position it can still stream from. */
  slotConfirmed: Lsn;
  /** pg_current_wal_lsn() when the relay started: a requested position beyond it has not been written yet. */
  walEnd: Lsn;
  /**
   * Whether `requested` may lie beyond what was delivered, skipping what was committed in between (`run
   * --start-lsn`). A replay re-delivers: there it would confirm past events never sent, with no preview.
   */
  forwardSkip: boolean;
}

/**
 * Where streaming starts. A requested LSN wins, but PostgreSQL would silently move one below the slot's confirmed
 * position forward, so that is refused with the oldest replayable LSN instead; and one beyond the current WAL end
 * would be confirmed as the start and skip every transaction committed until the WAL reaches it, so that is
 * refused too (the bounds `slot advance` checks), and so is a checkpoint beyond it. Otherwise the checkpoint, when it
 * is ahead of a slot kept behind by a replay window (or not yet confirmed after an exactly-once commit): every
 * transaction whose commit record starts before it is delivered, and PostgreSQL skips exactly those.
 * `undefined`: the slot's own position.
 */
export function chooseStart(inputs: StartInputs): Lsn | undefined {
  const { requested, checkpoint, slotConfirmed } = inputs;
  if (checkpoint !== undefined && checkpoint > inputs.walEnd) throw checkpointBeyondWalEnd(inputs.slot, inputs.republish, checkpoint, inputs.walEnd, inputs.checkpointCommitTimeMs);
  if (requested !== undefined) {
    if (requested < slotConfirmed) throw outOfWindow(inputs.slot, inputs.republish, requested, slotConfirmed);
    if (requested > inputs.walEnd) throw beyondWalEnd(requested, inputs.walEnd, inputs.forwardSkip);
    const delivered = checkpoint !== undefined && checkpoint > slotConfirmed ? checkpoint : slotConfirmed;
    if (!inputs.forwardSkip && requested > delivered) throw replayPastDelivered(inputs.slot, requested, delivered);
    return requested;
  }
  return checkpoint !== undefined && checkpoint > slotConfirmed ? checkpoint : undefined;
}

function outOfWindow(slot: string, scope: RepublishScope, requested: Lsn, oldest: Lsn): RelayError {
  return new RelayError('REPLAY_OUT_OF_WINDOW', `cannot replay from ${formatLsn(requested)}: slot "${slot}" can only stream from ${formatLsn(oldest)} on (oldest replayable LSN; a slot never rewinds)`, {
    hint:
      `replay from ${formatLsn(oldest)} or later, or re-send older events that are still in the outbox table: ` +
      `${republishCommand('<timestamp>', scope)} (or --ids <id,…> in place of --since). To replay further back in the future, run with a larger --replay-window`,
    details: { requestedLsn: formatLsn(requested), oldestReplayableLsn: formatLsn(oldest) },
  });
}

function replayPastDelivered(slot: string, requested: Lsn, delivered: Lsn): RelayError {
  return new RelayError(
    'OPERATION_REFUSED',
    `cannot replay from ${formatLsn(requested)}: slot "${slot}" has delivered up to ${formatLsn(delivered)}, and a replay from beyond it would confirm the events committed in between without ever sending them; nothing was confirmed`,
    {
      hint: `replay from ${formatLsn(delivered)} or earlier; to skip undelivered events on purpose, outbox-relay slot advance previews what it skips (a poison event: docs/operations.md)`,
      details: { requestedLsn: formatLsn(requested), deliveredLsn: formatLsn(delivered) },
    },
  );
}

/** `run`: the start position may be left out (the slot's then); replay needs one. */
function beyondWalEnd(requested: Lsn, walEnd: Lsn, optional: boolean): RelayError {
  return new RelayError('START_LSN_BEYOND_WAL', `cannot start at ${formatLsn(requested)}: PostgreSQL has written WAL only up to ${formatLsn(walEnd)}; nothing was confirmed`, {
    hint: `pass an LSN up to ${formatLsn(walEnd)} (an outbox-lsn header of a delivered record, or SELECT pg_current_wal_lsn())${optional ? ', or leave --start-lsn / OUTBOX_RELAY_START_LSN unset to start at the slot' : ''}`,
    details: { requestedLsn: formatLsn(requested), currentWalLsn: formatLsn(walEnd) },
  });
}

/**
 * A checkpoint written against another PostgreSQL server (another system identifier) under the same slot name and
 * checkpoint topic: two relays of different databases sharing the defaults, or a server this one replaced. Its LSN
 * means nothing in this server's WAL; taken as the start, one between the slot and the WAL end would skip
 * everything committed before it (the caller refuses that one). A promoted streaming replica keeps the identifier:
 * a failover is not caught here (docs/operations.md says what to do).
 */
export function foreignCheckpoint(slot: string, scope: RepublishScope, topic: string, checkpoint: { lsn: Lsn; systemId?: string }, systemId: string): RelayError | undefined {
  if (checkpoint.systemId === undefined || checkpoint.systemId === systemId) return undefined;
  return new RelayError(
    'CHECKPOINT_FOREIGN',
    `the checkpoint of slot "${slot}" in "${topic}" (at ${formatLsn(checkpoint.lsn)}) was written against another PostgreSQL server (system identifier ${checkpoint.systemId}, this one is ${systemId}): its position is not in this server's WAL; nothing was confirmed`,
    {
      hint: `give each database's relay its own slot name (slot) or checkpoint topic (checkpoint.topic): two relays of different servers share "${slot}" in "${topic}". If this server replaced the other one (pg_upgrade or a move to a new cluster, which give a new system identifier) and its slot is behind that position, point checkpoint.topic at a new topic and re-send what may be missing with ${republishCommand('<time>', scope)}`,
      details: { checkpointLsn: formatLsn(checkpoint.lsn), checkpointSystemId: checkpoint.systemId, systemId },
    },
  );
}

/**
 * The fix of a position to start or resume at that this server's WAL does not have (past its WAL end, or on the old
 * primary's timeline past where this server left it): the failover runbook, one text wherever it is met.
 * `commitTimeMs`: the commit time of the last transaction delivered up to that position, where known (a checkpoint
 * records it, a running relay remembers it; a --start-lsn has none): the republish then has its --since filled in.
 */
export function failoverRunbook(commitTimeMs: number | undefined, scope: RepublishScope): string {
  const since = republishSince(commitTimeMs, "<the last delivered commit time minus a margin> (outbox-relay status shows the checkpoint's)");
  return `follow the failover runbook (docs/operations.md, failover): point checkpoint.topic (--checkpoint-topic) at a new topic for this server and start again (the relay starts at the slot), then re-send what the old server may have committed after the standby's last WAL: ${republishCommand(since, scope)}`;
}

/**
 * A checkpoint past the server's WAL end was written against another server's WAL: a failover to a standby that
 * had not received it, or a restored backup. Started there, the relay would confirm it and skip every
 * transaction this server commits below it; kept, it stays the floor of every later checkpoint. Only a
 * checkpoint topic of this server's own ends that.
 */
function checkpointBeyondWalEnd(slot: string, scope: RepublishScope, checkpoint: Lsn, walEnd: Lsn, commitTimeMs: number | undefined): RelayError {
  return new RelayError(
    'CHECKPOINT_AHEAD_OF_WAL',
    `the checkpoint of slot "${slot}" is at ${formatLsn(checkpoint)}, but PostgreSQL has written WAL only up to ${formatLsn(walEnd)}: it was written against another server's WAL (a failover to a standby that had not received it, or a restored backup); nothing was confirmed`,
    {
      hint: failoverRunbook(commitTimeMs, scope),
      details: { checkpointLsn: formatLsn(checkpoint), currentWalLsn: formatLsn(walEnd) },
    },
  );
}

/** The slot's confirmed position (0 when it is missing: the session's checks say so), whether another connection streams from it, and the WAL's end. */
export interface SlotBounds {
  confirmed: Lsn;
  active: boolean;
  walEnd: Lsn;
  /** pg_control_system()'s system_identifier: which server's WAL the LSNs are in; undefined where it cannot be read. */
  systemId: string | undefined;
}

/**
 * The server's system identifier, or undefined where pg_control_system() is not allowed (EXECUTE revoked, a managed
 * service that does not offer it): the checkpoint then records none and no other server's is recognised, as before
 * checkpoints recorded it. A statement of its own, so that its failure leaves the slot's bounds readable.
 */
async function systemIdentifier(client: pg.Client): Promise<string | undefined> {
  try {
    const { rows } = await client.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()');
    return rows[0]?.id;
  } catch {
    return undefined;
  }
}

/** The start-position read, as its errors and timeouts name it. */
const SLOT_READ = "the read of the slot's position (where to start)";

/**
 * Where a start position may lie, read on an ordinary connection. A server that cannot be reached (down,
 * restarting, a connection lost mid-query) is retried as the replication connection is, with backoff: an
 * operator command's connect error is final, and at the first start a position that cannot be decided ended
 * the relay at once (exit 1) while the replication connection beside it would have been retried.
 */
export async function slotBounds(postgres: pg.ClientConfig, slot: string, republish: RepublishScope): Promise<SlotBounds> {
  try {
    return await readSlotBounds(postgres, slot);
  } catch (err) {
    // withClient names a connection that failed, ended or timed out under the query PG_CONNECT_FAILED (ops/connection.ts);
    // a standby's refusal (55000, in recovery) it names as an operator command's, final. Both are what the
    // replication connection beside it retries (classifyPgError): final here, at-least-once's first start ended at
    // once on a standby a failover's DNS still pointed at.
    const retried = isRelayError(err) && (err.code === 'PG_CONNECT_FAILED' || (err.cause as { code?: string } | undefined)?.code === '55000');
    throw retried ? classifyPgError(err.cause, { slot, republish, user: postgres.user, what: SLOT_READ }) : err;
  }
}

async function readSlotBounds(postgres: pg.ClientConfig, slot: string): Promise<SlotBounds> {
  return withClient(postgres, SLOT_READ, async (client) => {
    const { rows } = await client.query<{ lsn: string | null; active: boolean | null; wal_end: string }>(
      'SELECT s.confirmed_flush_lsn::text AS lsn, s.active, pg_current_wal_lsn()::text AS wal_end FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots s ON s.slot_name = $1',
      [slot],
    );
    const row = rows[0]!;
    return { confirmed: row.lsn ? parseLsn(row.lsn) : 0n, active: row.active === true, walEnd: parseLsn(row.wal_end), systemId: await systemIdentifier(client) };
  });
}
