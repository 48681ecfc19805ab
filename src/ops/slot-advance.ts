import type pg from 'pg';
import { RelayError, errorMessage } from '../errors.js';
import { formatLsn, parseLsn, type Lsn } from '../lsn.js';
import { quoteIdent, quoteQualified } from '../sql/quote.js';
import { skippedPublicationError } from '../source/pg-errors.js';
import type { RepublishScope } from '../source/republish-command.js';
import type { PgNotice } from '../source/replication-stream.js';
import { findPublication, type TableRef } from './publications.js';
import { requireSlot, slotProblem, slotUser } from './slots.js';

/** What moving the slot from `from` to `to` gives up. */
export interface SkipPreview {
  slot: string;
  from: string;
  to: string;
  walBytes: number;
  /** Transactions with events and the events (outbox INSERTs, logical messages with a relayed prefix) in the range; null when they could not be counted (`uncounted` says why). */
  transactions: number | null;
  events: number | null;
  uncounted?: string;
}

export interface AdvanceResult extends SkipPreview {
  /** confirmed_flush_lsn after the advance. */
  confirmedFlushLsn: string;
}

export function describeSkip(p: SkipPreview): string {
  const counted = p.events === null ? `the events in it could not be counted (${p.uncounted})` : `${p.transactions} transaction(s) with ${p.events} outbox event(s) in it`;
  return `moving slot "${p.slot}" from ${p.from} to ${p.to} skips ${p.walBytes} bytes of WAL, ${counted}: they will never be relayed`;
}

/**
 * Counts by decoding the range without consuming it: peek stops at the first commit at or after `to`, the
 * same transactions that streaming from a slot confirmed at `to` leaves out. An event is an INSERT (73, 'I') of
 * an outbox table (its relation OID, bytes 1 to 4: a publication may hold other tables, whose rows the relay
 * passes over) or, with message prefixes, a transactional logical message (77, 'M', flags 1) with one of
 * them: its prefix is the NUL-terminated string after the flags and the message's LSN (from byte 11 on).
 */
async function countSkipped(client: pg.Client, slot: string, republish: RepublishScope, tables: TableRef[], to: Lsn, messagePrefixes: string[]): Promise<Pick<SkipPreview, 'transactions' | 'events' | 'uncounted'>> {
  const { publication } = republish;
  // PostgreSQL 18's pgoutput decodes without a publication it cannot find (a wrong --publication, or one dropped):
  // it warns and counts nothing, where 15 to 17 failed the peek. Counted anyway, the preview said 0 events.
  if (!(await findPublication(client, publication))) {
    return { transactions: null, events: null, uncounted: `publication "${publication}" does not exist, and the count decodes the WAL with it: check --publication` };
  }
  const names = tables.map((t) => quoteQualified(t.schema, t.table));
  const { rows: relations } = await client.query<{ name: string; oid: string | null }>('SELECT t AS name, to_regclass(t)::oid::int8::text AS oid FROM unnest($1::text[]) t', [names]);
  const missing = relations.filter((r) => r.oid === null).map((r) => r.name);
  if (missing.length > 0) return { transactions: null, events: null, uncounted: `outbox table ${missing.join(', ')} does not exist: check --table (or tables:)` };
  const oids = relations.map((r) => r.oid!);
  const options = ['proto_version', '1', 'publication_names', quoteIdent(publication), ...(messagePrefixes.length ? ['messages', 'true'] : [])];
  // It exists now, but WAL written while it did not (dropped and re-created) is decoded without it alike, with one
  // "skipped loading publication" warning per change (18); 15 to 17 fail the peek there (42704).
  let skipped: RelayError | undefined;
  const onNotice = (notice: PgNotice) => {
    skipped ??= skippedPublicationError(notice, slot, republish);
  };
  client.on('notice', onNotice);
  try {
    const { rows } = await client.query<{ transactions: number; events: number }>(
      `SELECT count(DISTINCT xid::text) FILTER (WHERE event)::int AS transactions, count(*) FILTER (WHERE event)::int AS events
         FROM (SELECT xid, CASE get_byte(data, 0)
                             WHEN 73 THEN get_byte(data, 1)::int8 * 16777216 + get_byte(data, 2) * 65536 + get_byte(data, 3) * 256 + get_byte(data, 4) = ANY($5::int8[])
                             WHEN 77 THEN get_byte(data, 1) = 1 AND convert_from(substring(data FROM 11 FOR position('\\x00'::bytea IN substring(data FROM 11)) - 1), 'UTF8') = ANY($4::text[])
                             ELSE false
                           END AS event
                 FROM pg_logical_slot_peek_binary_changes($1, $2::pg_lsn, NULL, VARIADIC $3::text[])) changes`,
      [slot, formatLsn(to), options, messagePrefixes, oids],
    );
    if (skipped) return { transactions: null, events: null, uncounted: skipped.message };
    return { transactions: rows[0]?.transactions ?? 0, events: rows[0]?.events ?? 0 };
  } catch (err) {
    // Also a statement timeout (a long backlog to peek): the advance goes on uncounted. After a Ctrl-C it is not
    // sent (cli/ops-interrupt.ts refuses every statement after the signal).
    return { transactions: null, events: null, uncounted: errorMessage(err) };
  } finally {
    client.off('notice', onNotice);
  }
}

/**
 * Moves a slot forward with pg_replication_slot_advance, to get past events the relay cannot deliver. Refuses
 * to go backwards (a slot cannot rewind), beyond the current WAL position, or while the slot is in use; and
 * without `confirmed` it only describes what would be skipped.
 */
export async function advanceSlot(client: pg.Client, options: { slot: string; republish: RepublishScope; tables: TableRef[]; messagePrefixes: string[]; to: Lsn; confirmed: boolean }): Promise<AdvanceResult> {
  const slot = await requireSlot(client, { slot: options.slot, ...options.republish });
  const problem = slotProblem(slot, options.republish);
  if (problem) throw problem;
  // Also while a starting relay holds the slot's lock: it streams from the slot's position as it finds it then.
  const user = await slotUser(client, slot);
  if (user !== null) {
    throw new RelayError('PG_SLOT_ACTIVE', `replication slot "${slot.name}" is in use by backend pid ${user}`, {
      details: { activePid: user },
      hint: 'stop the relay first: a slot in use cannot be advanced',
    });
  }
  const from = parseLsn(slot.confirmedFlushLsn ?? '0/0');
  const target = formatLsn(options.to);
  if (options.to < from) {
    throw new RelayError('OPERATION_REFUSED', `${target} is behind the slot's confirmed position ${formatLsn(from)}: a slot never moves backwards`, {
      hint: `pass an LSN after ${formatLsn(from)}; to re-send older events, re-publish them from the outbox table`,
    });
  }
  const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  const current = parseLsn(rows[0]!.lsn);
  if (options.to > current) {
    throw new RelayError('OPERATION_REFUSED', `${target} is beyond the current WAL position ${formatLsn(current)}`, { hint: `pass an LSN up to ${formatLsn(current)}` });
  }
  const preview: SkipPreview = {
    slot: slot.name,
    from: formatLsn(from),
    to: target,
    walBytes: Number(options.to - from),
    ...(options.to === from ? { transactions: 0, events: 0 } : await countSkipped(client, slot.name, options.republish, options.tables, options.to, options.messagePrefixes)),
  };
  if (!options.confirmed && options.to > from) {
    throw new RelayError('CONFIRMATION_REQUIRED', `not advanced: ${describeSkip(preview)}`, {
      details: { ...preview },
      hint: 'if those events may be lost (or you will re-publish them from the outbox table), run the same command with --yes-skip-events',
    });
  }
  const advanced = await client.query<{ lsn: string }>('SELECT end_lsn::text AS lsn FROM pg_replication_slot_advance($1, $2::pg_lsn)', [slot.name, target]);
  return { ...preview, confirmedFlushLsn: advanced.rows[0]!.lsn };
}
