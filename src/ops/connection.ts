import type pg from 'pg';
import { RelayError, errorMessage, isRelayError } from '../errors.js';
import { quoteIdent, quoteQualified } from '../sql/quote.js';
import type { RelayNames } from '../source/republish-command.js';
import { pgRefusal, refusedMessage } from './pg-refusals.js';
import { credentialsFix, tlsFix, withTextSettings } from '../source/pg-connect.js';
import { connectBounded, timeoutError } from '../source/pg-timeouts.js';

interface PgError {
  code?: string;
}

/** admin_shutdown (also pg_terminate_backend), crash_shutdown, cannot_connect_now. */
const SERVER_GONE_CODES = new Set(['57P01', '57P02', '57P03']);

/** How pg words a connection that ended under a query (its errors carry no SQLSTATE then); its query timeout is timeoutError's. */
const CONNECTION_LOST = /^Connection terminated|^Client has encountered a connection error|socket hang up/i;

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', '28P01', '28000', '3D000']);

/** A connection lost under a statement leaves its outcome open: a server may have done it without answering. */
const STATEMENT_FATE = 'outbox-relay status shows what a statement under way did';

/**
 * A timeout (timeoutError) under the code of an operator command's lost connection: a command retries nothing.
 * The start-position read (slotBounds) takes the timeout back out of `cause`, to be retried as the relay does.
 */
function lostConnection(timeout: RelayError, fate = ''): RelayError {
  return new RelayError('PG_CONNECT_FAILED', timeout.message, { cause: timeout, hint: `${timeout.hint}${fate}`, details: timeout.details });
}

const URL_SETTINGS = '--postgres-url / OUTBOX_RELAY_POSTGRES_URL / DATABASE_URL / PG* variables';

/**
 * A connection no server took (nothing listens there, a name that does not resolve): no refusal, so the password
 * and pg_hba.conf, which the fix named for it, are not where to look. Undefined for any other failure.
 */
function notListeningFix(err: unknown): string | undefined {
  const { code, address, port, hostname } = err as { code?: string; address?: string; port?: number; hostname?: string };
  if (code === 'ECONNREFUSED') {
    const where = address === undefined ? 'the host and port of postgres.url' : `${address.includes(':') ? `[${address}]` : address}${port === undefined ? '' : `:${port}`}`;
    return `no PostgreSQL server is accepting connections at ${where}: check that it is running and listens there (listen_addresses, port), and the host and port in ${URL_SETTINGS}`;
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `the host name ${hostname ?? 'of postgres.url'} does not resolve (DNS): check the host in ${URL_SETTINGS}`;
  return undefined;
}

function connectError(err: unknown): RelayError {
  // connectBounded's timeout, already named.
  if (isRelayError(err)) return lostConnection(err);
  return new RelayError('PG_CONNECT_FAILED', `cannot connect to PostgreSQL: ${errorMessage(err)}`, {
    cause: err,
    hint: tlsFix(err) ?? credentialsFix(err) ?? notListeningFix(err) ?? `check ${URL_SETTINGS}, the password and pg_hba.conf`,
  });
}

/**
 * A table PostgreSQL's refusal names by its name alone, as a GRANT names it: schema-qualified when it is one of the
 * relay's tables (`names`), which the role's search_path may not reach; else quoted only, found on the search_path.
 */
function grantedTable(name: string, names: RelayNames | undefined): string {
  const ours = (names?.tables ?? []).filter((t) => t.table === name);
  return ours.length === 1 ? quoteQualified(ours[0]!.schema, name) : quoteIdent(name);
}

/**
 * What an operator command reports when PostgreSQL refuses a statement: a stable code and what to do,
 * instead of a stack trace. `role` is the connected role, named in the fix; `names`, the command's slot,
 * publication and tables, where it has them: named in the fixes, to run as printed.
 */
export function opsError(err: unknown, role: string, names?: RelayNames): RelayError {
  if (isRelayError(err)) return err;
  const code = (err as PgError).code;
  const message = errorMessage(err);
  if (code === '42501' && /replication/i.test(message)) {
    return new RelayError('PG_NO_REPLICATION_PRIVILEGE', `role "${role}" may not use replication slots: ${message}`, {
      cause: err,
      hint: `as a superuser: ALTER ROLE ${quoteIdent(role)} WITH REPLICATION;  (on Amazon RDS / Aurora, as the master user: GRANT rds_replication TO ${quoteIdent(role)};)`,
    });
  }
  if (code === '42501') {
    // A table or schema PostgreSQL names: the grant itself. setup --dry-run checks what the relay needs, which
    // passed for a role that republish then found without SELECT on the outbox table.
    const [, kind, name] = /^permission denied for (table|schema) (.+)$/.exec(message) ?? [];
    const grant = kind === 'table' ? `GRANT SELECT ON ${grantedTable(name!, names)} TO ${quoteIdent(role)};` : kind === 'schema' ? `GRANT USAGE ON SCHEMA ${quoteIdent(name!)} TO ${quoteIdent(role)};` : undefined;
    return new RelayError('PG_PERMISSION_DENIED', `role "${role}" lacks a privilege: ${message}`, {
      cause: err,
      hint: grant
        ? `as the ${kind}'s owner or a superuser: ${grant}  (docs/security.md lists what each command needs)`
        : 'run outbox-relay setup --dry-run as this role: its checks name each missing privilege and the statement that grants it',
    });
  }
  if (code !== undefined && CONNECT_CODES.has(code)) return connectError(err);
  // The connection itself went (a server shutting down, a failover, a backend terminated mid-command): no
  // refusal to name, and no SQLSTATE at all when the server could not say so.
  if ((code !== undefined && SERVER_GONE_CODES.has(code)) || (code === undefined && CONNECTION_LOST.test(message))) {
    return new RelayError('PG_CONNECT_FAILED', `lost the connection to PostgreSQL during the command: ${message}`, {
      cause: err,
      hint: `check that PostgreSQL is up (a restart or a failover ends every connection), then run the command again; ${STATEMENT_FATE}`,
    });
  }
  return (
    pgRefusal(code, message, err, names) ??
    new RelayError('PG_QUERY_FAILED', refusedMessage(code, message, err), {
      cause: err,
      details: { sqlstate: code },
      hint: 'the message above is PostgreSQL’s own; outbox-relay setup --dry-run checks the server, the role and the objects the relay needs',
    })
  );
}

/**
 * One ordinary (not replication) connection for the duration of `work`. The operator commands only run
 * catalog queries and functions such as pg_create_logical_replication_slot, which need no walsender. `what` names
 * the work's queries in a timeout's message; `names`, the command's slot, publication and tables (see opsError).
 */
export async function withClient<T>(config: pg.ClientConfig, what: string, work: (client: pg.Client, classify: (err: unknown) => RelayError) => Promise<T>, names?: RelayNames): Promise<T> {
  const cli = { ...withTextSettings(config), application_name: 'outbox-relay-cli' };
  let client: pg.Client;
  try {
    // A socket error after the last query must not crash the process; the active query reports real failures.
    client = await connectBounded(cli, what, (c) => void c.on('error', () => undefined));
  } catch (err) {
    throw connectError(err);
  }
  let role = client.user ?? '<role>';
  // Also the work's, to add to an error what it knows (republish: where to go on) without losing its code.
  const classify = (err: unknown): RelayError => {
    const timeout = timeoutError(err, cli, what);
    return timeout ? lostConnection(timeout, `; ${STATEMENT_FATE}`) : opsError(err, role, names);
  };
  try {
    const { rows } = await client.query<{ role: string }>('SELECT current_user AS role');
    role = rows[0]?.role ?? role;
    return await work(client, classify);
  } catch (err) {
    throw classify(err);
  } finally {
    // The command's outcome is the work's (or its error): a failing close of a connection it is done with changes nothing.
    await client.end().catch(() => undefined);
  }
}
