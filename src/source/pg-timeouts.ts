import pg from 'pg';
import { settingRef } from '../config/settings.js';
import { formatDuration } from '../config/units.js';
import { RelayError } from '../errors.js';
import { connectClient } from './pg-connect.js';

/**
 * TCP keepalive after this long without traffic (Node then probes every second, 10 times): a server host that
 * died or was cut off after it acknowledged everything we sent fails the connection instead of leaving it waiting
 * for good. A server whose kernel still answers (a stopped or stuck postmaster) passes the probes: the timeouts
 * below catch that one.
 */
export const KEEPALIVE_IDLE_MS = 10_000;

/**
 * pg's errors when connectionTimeoutMillis and query_timeout run out (pg/lib/client.js, 8.x): no code and no
 * property of their own, only these words. Timers of the relay's own would be a second copy of pg's (which also
 * take the query out of its queue), so the words are matched, and test/unit/pg-timeouts.test.ts runs pg's real
 * timeouts against a local server: a pg that words them otherwise fails it instead of leaving a timeout unnamed.
 */
const CONNECT_TIMED_OUT = 'timeout expired';
const QUERY_TIMED_OUT = 'Query read timeout';

/**
 * How long the relay waits for the answer to one query: postgres.statementTimeout, at which a working server
 * cancels the statement itself (57014, which names the setting), plus postgres.connectTimeout for that answer to
 * arrive. Only a server or a network path that hangs runs into it.
 */
function queryTimeoutMs(config: pg.ClientConfig): number {
  return (config.statement_timeout || 0) + (config.connectionTimeoutMillis ?? 0);
}

/**
 * The RelayError for pg's connect or query timeout `err` on a connection for `what` (a query, named in the
 * message); undefined for any other error. Retriable, as a lost connection: the relay's outage handling retries it.
 */
export function timeoutError(err: unknown, config: pg.ClientConfig, what: string): RelayError | undefined {
  if (!(err instanceof Error) || 'code' in err) return undefined;
  const connectMs = config.connectionTimeoutMillis ?? 0;
  const retry = 'a running relay retries by itself, for at most retry.maxDuration; a command can be run again';
  if (err.message === CONNECT_TIMED_OUT) {
    return new RelayError(
      'PG_STREAM_FAILED',
      `PostgreSQL did not complete a connection for ${what} within ${formatDuration(connectMs)} (postgres.connectTimeout): it accepted none, or never answered the start-up (a stopped or stuck server, a network path that drops packets)`,
      {
        cause: err,
        retriable: true,
        hint: `check that PostgreSQL is up and answering, and the network path to it (${retry}); a network that takes longer to connect needs a longer ${settingRef('postgres.connectTimeout')}`,
        details: { connectTimeoutMs: connectMs },
      },
    );
  }
  if (err.message !== QUERY_TIMED_OUT) return undefined;
  const timeoutMs = queryTimeoutMs(config);
  return new RelayError(
    'PG_STREAM_FAILED',
    `PostgreSQL did not answer ${what} within ${formatDuration(timeoutMs)} (postgres.statementTimeout plus postgres.connectTimeout; a working server cancels a statement itself at the first): the server or the network path to it hangs`,
    {
      cause: err,
      retriable: true,
      hint: `check that PostgreSQL is up and answering (the host's load and disk I/O, pg_stat_activity) and the network path to it (${retry}); a statement that runs longer needs a longer ${settingRef('postgres.statementTimeout')}`,
      details: { queryTimeoutMs: timeoutMs },
    },
  );
}

/**
 * Opens an ordinary (not replication) connection whose every wait is bounded: the connect by
 * postgres.connectTimeout, each query by queryTimeoutMs, and an idle socket by TCP keepalive. Without them a
 * PostgreSQL that is stopped but reachable, or a path that drops packets, held the caller for good: no error line,
 * no exit. `watch` sets up each new client's listeners; `what` names the query in a timeout's message.
 */
export async function connectBounded(config: pg.ClientConfig, what: string, watch: (client: pg.Client) => void): Promise<pg.Client> {
  const options: pg.ClientConfig = { ...config, keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS, query_timeout: queryTimeoutMs(config) };
  const client = new pg.Client(options);
  watch(client);
  try {
    return await connectClient(client, options, watch);
  } catch (err) {
    // The connection failed: how its end goes changes nothing.
    await client.end().catch(() => undefined);
    throw timeoutError(err, config, what) ?? err;
  }
}

/**
 * `sql` on `client`, its timeout named as timeoutError says. The bound goes with the query, not only the
 * connection: the replication connection runs its pre-flight queries here, and a bound of its own would also end
 * START_REPLICATION.
 */
export async function boundedQuery<R extends pg.QueryResultRow>(client: pg.Client, config: pg.ClientConfig, what: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const query: pg.QueryConfig & { query_timeout: number } = { text: sql, values: params, query_timeout: queryTimeoutMs(config) };
  try {
    return (await client.query<R>(query)).rows;
  } catch (err) {
    throw timeoutError(err, config, what) ?? err;
  }
}
