import type pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { RelayError, errorMessage } from '../errors.js';
import { quoteIdent } from '../sql/quote.js';
import { recreateSlot } from '../source/recreate-slot.js';
import { republishCommand, type RelayNames, type RepublishScope } from '../source/republish-command.js';
import { openTransactions, resendSince, type OpenTransactions } from './open-transactions.js';
import { findSlot, slotUser, wrongDatabase, type SlotStatus } from './slots.js';

export interface DropResult {
  /** False when there was no such slot: dropping is idempotent. */
  dropped: boolean;
  /** Backends terminated to release the slot (--force). */
  terminatedPids: number[];
  /** When the slot was dropped: events committed from then on until a new slot exists are not streamed. */
  droppedAt?: string;
  /** The slot just before the drop: what it had confirmed, and the WAL behind the server's position. */
  confirmedLsn?: string | null;
  lagBytes?: number | null;
  /** Whether it was a PostgreSQL 17 failover slot (null before 17): the new one must be created as one too. */
  failover?: boolean | null;
  /** The transactions open in the database at the drop (see OpenTransactions). */
  openTransactions?: OpenTransactions;
}

/**
 * What dropping costs, said before (refusal) and after (result): the gap only `republish` can fill. It begins at
 * the slot's confirmed position, not at the drop: a halted or lagging relay had not delivered what was committed
 * after it. Only a slot with no WAL behind the server's position had nothing undelivered for certain. `republish`:
 * the slot, and the publication and tables its relay streams, named in the slot create and the republish.
 */
export function dropConsequence(slot: Pick<SlotStatus, 'confirmedFlushLsn' | 'lagBytes' | 'failover'>, republish: RelayNames, at: Date, open?: OpenTransactions): string {
  const create = recreateSlot('slot create', slot.failover === true || null, republish);
  const resend = (since: string): string => `after ${create}, re-send them from the table with ${republishCommand(since, republish)}`;
  const from = slot.lagBytes === 0 ? resendSince(at, open) : undefined;
  if (from) {
    return `the slot had confirmed all WAL written (${slot.confirmedFlushLsn}): events committed from now until it is re-created are never streamed; ${resend(`'${from.since}'`)} (${from.why})`;
  }
  const behind = slot.lagBytes === null ? '' : ` (${slot.lagBytes} bytes of WAL behind the server)`;
  return (
    `events committed after the slot's confirmed position ${slot.confirmedFlushLsn}${behind} that its relay had not delivered, and those committed until it is re-created, are never streamed; ` +
    `${resend("'<T>'")}, T = the commit time of the last event delivered (the checkpoint's commitTime in outbox-relay status --kafka-brokers …, or the newest record's outbox-commit-time header) minus a margin longer than your longest transaction`
  );
}

// A terminated relay reconnects within a second or so and may take the slot again before the drop runs.
const FORCE_DEADLINE_MS = 10_000;

function activeError(slot: SlotStatus): RelayError {
  return new RelayError('PG_SLOT_ACTIVE', `replication slot "${slot.name}" is in use by backend pid ${slot.activePid} (a running relay?)`, {
    details: { activePid: slot.activePid },
    hint: 'stop the relay first, or pass --force to terminate that connection and drop the slot anyway (the relay then stops: its slot is gone)',
  });
}

/**
 * pg_terminate_backend of another role's backend needs pg_signal_backend, and of a superuser's a superuser. Left to
 * the generic refusal, the fix sent the operator to setup --dry-run, whose checks know nothing of either.
 */
async function terminate(client: pg.Client, pid: number, slot: string): Promise<void> {
  try {
    await client.query('SELECT pg_terminate_backend($1, 5000)', [pid]);
  } catch (err) {
    // insufficient_privilege
    if ((err as { code?: string }).code !== '42501') throw err;
    const { rows } = await client.query<{ me: string; holder: string | null; superuser: boolean | null }>(
      'SELECT current_user AS me, a.usename AS holder, r.rolsuper AS superuser FROM (SELECT 1) one LEFT JOIN pg_stat_activity a ON a.pid = $1 LEFT JOIN pg_roles r ON r.oid = a.usesysid',
      [pid],
    );
    const { me, holder, superuser } = rows[0]!;
    const stop = 'or stop the relay first (then no --force is needed)';
    throw new RelayError('PG_PERMISSION_DENIED', `role "${me}" may not terminate backend pid ${pid}${holder === null ? '' : ` (role "${holder}")`}, which holds replication slot "${slot}": ${errorMessage(err)}`, {
      cause: err,
      details: { activePid: pid, holder },
      hint:
        superuser === true
          ? `that backend's role is a superuser, which only a superuser may terminate: run slot drop --force as one, ${stop}`
          : `as a superuser: GRANT pg_signal_backend TO ${quoteIdent(me)}; or run slot drop --force as the relay's role${holder === null ? '' : ` ${holder}`} (a role may terminate its own backends), ${stop}`,
    });
  }
}

/**
 * Drops a slot, and with `force` first terminates the backend streaming from it (pg_terminate_backend). The
 * position and the WAL it pins are gone afterwards: only a new slot, created from now on, can be streamed.
 */
export async function dropSlot(client: pg.Client, name: string, republish: RepublishScope, force: boolean): Promise<DropResult> {
  const slot = await findSlot(client, name);
  if (!slot) return { dropped: false, terminatedPids: [] };
  const elsewhere = wrongDatabase(slot);
  if (elsewhere) throw elsewhere;
  const terminatedPids: number[] = [];
  const deadline = Date.now() + FORCE_DEADLINE_MS;
  for (let current = slot; ; ) {
    const pid = await slotUser(client, current);
    // Read once, here: a relay that took the slot's lock after an earlier look is terminated only with --force.
    if (pid !== null && !force) {
      throw new RelayError('CONFIRMATION_REQUIRED', `not dropped: replication slot "${current.name}" is in use by backend pid ${pid} (a running relay). Dropping it stops that relay, and ${dropConsequence(current, { slot: name, ...republish }, new Date())}`, {
        details: { activePid: pid },
        hint: 'stop the relay first, or pass --force to terminate its connection and drop the slot anyway',
      });
    }
    if (pid !== null) {
      await terminate(client, pid, name);
      terminatedPids.push(pid);
    }
    try {
      // After a termination the relay's last status update may have moved the slot: what it had confirmed, as dropped.
      const last = (await findSlot(client, name)) ?? current;
      const open = await openTransactions(client);
      const droppedAt = new Date().toISOString();
      await client.query('SELECT pg_drop_replication_slot($1)', [name]);
      return { dropped: true, terminatedPids, droppedAt, confirmedLsn: last.confirmedFlushLsn, lagBytes: last.lagBytes, failover: last.failover, openTransactions: open };
    } catch (err) {
      // 55006: object_in_use, the slot was (re)acquired between the check and the drop.
      if ((err as { code?: string }).code !== '55006') throw err;
      const now = await findSlot(client, name);
      if (!now) return { dropped: false, terminatedPids };
      if (!force || Date.now() > deadline) throw activeError(now);
      current = now;
      await sleep(100);
    }
  }
}
