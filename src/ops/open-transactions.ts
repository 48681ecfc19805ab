import type pg from 'pg';
import { republishSince } from '../source/slot-lost.js';

/**
 * The transactions open in the database when a slot or a publication is dropped, or when the relay last found its
 * tables published. One that commits after the drop (or inserts after its table left the publication) is not
 * streamed there, and the rows it writes carry its start as created_at (DEFAULT now()), however long before that
 * was: a `republish --since` of a minute before the drop passed over them (measured on PostgreSQL 15: a slot's
 * drop, a publication's, a table taken out of it). `oldestStartMs`: the earliest
 * xact_start among them (null: none open); `hidden`: some session's xact_start cannot be read by this role
 * (another role's, without pg_read_all_stats), so how far back they go is unknown.
 */
export interface OpenTransactions {
  oldestStartMs: number | null;
  hidden: boolean;
}

// Client backends only: a walsender, an autovacuum worker (whose transaction can run for hours) writes no outbox row.
export const OPEN_TRANSACTIONS_SQL = `SELECT min(xact_start) AS oldest, coalesce(bool_or(state IS NULL), false) AS hidden
  FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`;

/** OPEN_TRANSACTIONS_SQL's row as OpenTransactions. */
export function openTransactionsOf(row: { oldest: Date | string | null; hidden: boolean } | undefined): OpenTransactions {
  const oldest = row?.oldest ?? null;
  return { oldestStartMs: oldest === null ? null : new Date(oldest).getTime(), hidden: row?.hidden === true };
}

export async function openTransactions(client: pg.Client): Promise<OpenTransactions> {
  const { rows } = await client.query<{ oldest: Date | string | null; hidden: boolean }>(OPEN_TRANSACTIONS_SQL);
  return openTransactionsOf(rows[0]);
}

/** `atMs`, or the start of the oldest transaction open then when that is earlier: where rows left unstreamed begin. */
export function coveredFrom(atMs: number, open: OpenTransactions): number {
  return open.oldestStartMs !== null && open.oldestStartMs < atMs ? open.oldestStartMs : atMs;
}

/**
 * The `republish --since` that covers what a drop at `at` leaves unstreamed, and why that time: a minute before the
 * drop, or before the oldest transaction then open. Undefined when this role could not see every session's start.
 */
export function resendSince(at: Date, open: OpenTransactions | undefined): { since: string; why: string } | undefined {
  if (open?.hidden === true) return undefined;
  const from = open ? coveredFrom(at.getTime(), open) : at.getTime();
  const why = from === at.getTime() ? 'a minute before the drop' : 'a minute before the start of the oldest transaction open at the drop';
  return { since: republishSince(from, ''), why: `${why}: a row's created_at is its transaction's start` };
}
