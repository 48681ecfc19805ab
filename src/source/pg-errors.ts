import { RelayError, errorMessage, isRelayError } from '../errors.js';
import { IN_RECOVERY, STANDBY_FIX } from '../ops/pg-refusals.js';
import { quoteIdent } from '../sql/quote.js';
import { credentialsFix, tlsFix } from './pg-connect.js';
import { newSlotThenRepublish } from './publication-dropped.js';
import type { KnownPublication } from './publication-as-it-was.js';
import type { RepublishScope } from './republish-command.js';
import { slotLostError } from './slot-lost.js';

interface PgError {
  code?: string;
  message?: string;
  /** The server's context: for an error while decoding, the slot, the output plugin, its callback and the LSN. */
  where?: string;
  /** The server's errdetail: for an invalidated slot, why (16+), in the server's language. */
  detail?: string;
}

/** Where the error came from: the slot and role the relay works with, and `what` the connection was for (as pg-timeouts names it). */
export interface PgErrorContext {
  slot: string;
  /** The relay's publication and tables: a lost slot's fix names them in the republish. */
  republish: RepublishScope;
  user?: string | undefined;
  /** Named in the message: the replication session, a standby's poll and the start-position read fail alike, and an on-call engineer looks where it says. */
  what: string;
  /** The publication the relay streams with, as it last saw it: named in the fix should it be gone (newSlotThenRepublish). */
  known?: KnownPublication | undefined;
}

function publicationMissingError(slot: string, scope: RepublishScope, reported: PgError, cause: unknown, known: KnownPublication | undefined): RelayError {
  const { publication } = scope;
  return new RelayError('PG_PUBLICATION_MISSING', `replication slot "${slot}" cannot stream past WAL written while publication "${publication}" did not exist: ${reported.message}`, {
    cause,
    hint: newSlotThenRepublish(undefined, { slot, ...scope }, known),
    details: reported.where ? { publication, where: reported.where } : { publication },
  });
}

/**
 * PostgreSQL 18's pgoutput warns where older ones failed (the 42704 below): a publication missing at the WAL it
 * decodes is "skipped loading publication" (a WARNING, 55000), and so is every change until it exists again, with
 * nothing else to show for it. Relayed as a warning, the slot moved past events never sent: it is the same error.
 * Recognised by what a translated message keeps: its SQLSTATE, the publication's name, and pgoutput in its
 * context (quoted as the language quotes). The walsender's other 55000 warnings (PostgreSQL 17's synchronized_standby_slots ones, while it waits
 * for a standby) come from no output plugin's callback, and name a slot, not the publication.
 */
export function skippedPublicationError(notice: PgError, slot: string, scope: RepublishScope, known?: KnownPublication): RelayError | undefined {
  if (notice.code !== '55000' || !notice.message?.includes(scope.publication) || !notice.where?.includes('pgoutput')) return undefined;
  return publicationMissingError(slot, scope, notice, undefined, known);
}

/**
 * The invalidation reason in a refused START_REPLICATION's detail, where the pre-flight's pg_replication_slots
 * read is not at hand: 18 quotes it ('… invalidated due to "idle_timeout".'), 16 and 17 describe WAL removal and
 * a conflict with recovery (read from each release's binary). Undefined for other wording (a translated one).
 */
function reasonInDetail(detail: string | undefined): string | undefined {
  if (detail === undefined) return undefined;
  const quoted = /invalidated due to "(\w+)"/.exec(detail)?.[1];
  if (quoted !== undefined) return quoted;
  if (detail.includes('exceeded the maximum reserved size')) return 'wal_removed';
  if (detail.includes('conflicting with recovery')) return 'conflicting';
  return undefined;
}

/** Turns what `pg` and the server report into RelayErrors that say what to do. */
export function classifyPgError(err: unknown, context: PgErrorContext): RelayError {
  if (isRelayError(err)) return err;
  const pgErr = err as PgError;
  const message = errorMessage(err);
  const tls = tlsFix(err);
  // A certificate is not accepted the next time either: a configuration to fix, as a refused password is.
  if (tls !== undefined && pgErr.code !== '28000') return new RelayError('PG_CONNECT_FAILED', `TLS to PostgreSQL for ${context.what} failed: ${message}`, { cause: err, hint: tls });
  const credentials = credentialsFix(err);
  if (credentials !== undefined) return new RelayError('PG_CONNECT_FAILED', `PostgreSQL refused the connection for ${context.what}: ${message}`, { cause: err, hint: credentials });
  switch (pgErr.code) {
    case '42501':
      if (/replication|walsender|WAL sender/i.test(message)) {
        // Quoted as setup's check quotes it: a role name with capitals or a hyphen, bare, names another role or none.
        const role = context.user === undefined ? '<relay role>' : quoteIdent(context.user);
        return new RelayError('PG_NO_REPLICATION_PRIVILEGE', `the PostgreSQL role may not open a replication connection: ${message}`, {
          hint: `ALTER ROLE ${role} WITH REPLICATION;  (on Amazon RDS / Aurora: GRANT rds_replication TO ${role};) and allow it in pg_hba.conf; see sql/003_relay_role.sql`,
        });
      }
      break;
    case '55000':
      // START_REPLICATION on a slot invalidated since pre-flight: "cannot read from …" up to PostgreSQL 15, "can no
      // longer get changes from …" in 16 and 17 (logical.c, CreateDecodingContext), "can no longer access …" in 18
      // (slot.c, ReplicationSlotAcquire).
      if (/cannot read from logical replication slot|can no longer (?:get changes from|access) replication slot|has been invalidated|wal_status/i.test(message)) {
        return slotLostError(context.slot, context.republish, reasonInDetail(pgErr.detail), pgErr.detail ? `${message} (${pgErr.detail})` : message);
      }
      // The pre-flight's pg_current_wal_lsn() on a standby. Retried: during a failover the URL's name may point at
      // the old primary or the one being promoted for a while; retry.maxDuration bounds it, and the giving-up line
      // carries the fix. The message says "standby" at once, as the retry line has no fix.
      if (IN_RECOVERY.test(message)) {
        return new RelayError('PG_STREAM_FAILED', `PostgreSQL for ${context.what} is a standby (in recovery), not the primary: ${message}`, { cause: err, retriable: true, hint: STANDBY_FIX });
      }
      break;
    case '42704': {
      // pgoutput (PostgreSQL 17 and older) looks its publications up as of the WAL it decodes: WAL written while
      // the publication did not exist (dropped while the slot existed, re-created since or not) fails at the same
      // position on every reconnect, and a keepalive before it ends each outage, so retrying never ended. Other
      // 42704s (a slot dropped meanwhile) are retried: the next pre-flight names them.
      const publication = /^publication "(.*)" does not exist$/.exec(message)?.[1];
      if (publication === undefined) break;
      // The server names the publication it misses: the relay's, whose tables the republish names too.
      const scope = publication === context.republish.publication ? context.republish : { publication };
      return publicationMissingError(context.slot, scope, pgErr, err, context.known);
    }
    case '55006':
      return new RelayError('PG_SLOT_ACTIVE', `replication slot "${context.slot}" is in use: ${message}`, { retriable: true, cause: err });
    case '3D000':
    case '28P01':
    case '28000':
      return new RelayError('PG_CONNECT_FAILED', `PostgreSQL refused the connection for ${context.what}: ${message}`, {
        cause: err,
        // Right for the ordinary connections and the replication one alike: both match pg_hba.conf by the database.
        hint:
          tls ??
          "check postgres.url / DATABASE_URL / PG* variables, the password and pg_hba.conf: a line for the database must let the relay's role in (a logical replication connection matches the database name, not the replication keyword)",
      });
    default:
      break;
  }
  // Everything else (network errors, server restarts, admin shutdown 57P01, walsender timeouts) is worth a reconnect.
  return new RelayError('PG_STREAM_FAILED', `PostgreSQL connection for ${context.what} failed: ${message}`, { cause: err, retriable: true });
}
