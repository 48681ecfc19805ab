import pg from 'pg';
import { settingRef } from '../config/settings.js';
import { errorMessage } from '../errors.js';
import { certificateProblem } from '../tls-certificate.js';

/** Marks the `ssl` of postgres.sslmode=prefer; node's TLS options ignore a symbol key. */
const PREFERRED = Symbol('postgres.sslmode=prefer');

/**
 * pg's error when the server answers the TLS request with "no" (pg/lib/connection.js): no code, only these words.
 * test/unit/pg-connect.test.ts runs pg against a server without TLS: a pg that words it otherwise fails it.
 */
const NO_TLS = 'The server does not support SSL connections';

/** postgres.sslmode=prefer: TLS without verification, as require, but a server without TLS is connected to in plain text. */
export function preferTls(): pg.ClientConfig['ssl'] {
  return { rejectUnauthorized: false, [PREFERRED]: true } as pg.ClientConfig['ssl'];
}

/**
 * Connects `client`. pg has no prefer mode: given `ssl`, it insists on TLS. So libpq's prefer is done here: when
 * the server has no TLS, a plain client takes the failed one's place (`watch` sets up each new client's listeners).
 * The caller ends `client` when this throws; a plain client that failed is ended here, as the caller never sees it.
 */
export async function connectClient(client: pg.Client, config: pg.ClientConfig, watch: (client: pg.Client) => void): Promise<pg.Client> {
  try {
    await client.connect();
    return client;
  } catch (err) {
    const preferred = typeof config.ssl === 'object' && (config.ssl as Record<symbol, unknown>)[PREFERRED] === true;
    if (!preferred || errorMessage(err) !== NO_TLS) throw err;
  }
  // The refused client needs no end: on the server's 'N' pg ended its socket (connection.js), and the server closes on that.
  const plain = new pg.Client({ ...config, ssl: false });
  watch(plain);
  try {
    await plain.connect();
    return plain;
  } catch (err) {
    // Its socket stayed open where the server had not closed it yet (a refused login), once per reconnect.
    // The connection failed: how its end goes changes nothing.
    await plain.end().catch(() => undefined);
    throw err;
  }
}

/**
 * The fix for a connection that failed on TLS: a server certificate verify-ca/verify-full did not accept (node's
 * codes), or the server's pg_hba.conf refusal of a connection without TLS (a hostssl line only; PostgreSQL's
 * English wording ends with "no encryption"). Undefined for any other failure. Without it a certificate failure
 * was retried as an outage until retry.maxDuration, then reported as "check that PostgreSQL is up and reachable".
 */
export function tlsFix(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  const problem = certificateProblem(code);
  const sslmode = settingRef('postgres.sslmode');
  if (problem === 'host name') {
    return `in postgres.url, name the server by a host name its certificate lists (subjectAltName), or set ${sslmode} verify-ca, which checks the CA but not the host name`;
  }
  if (problem === 'untrusted') {
    return `give the CA certificate (PEM) that signed the server's certificate as ${settingRef('postgres.sslCaFile')}; ${sslmode} require encrypts without verifying the server`;
  }
  if (problem === 'validity') return "the server's certificate is outside its validity period: renew it on the server (or correct this host's clock)";
  if (code === '28000' && errorMessage(err).endsWith('no encryption')) {
    return `pg_hba.conf lets the role in only over TLS: set ${sslmode} verify-full (with ${settingRef('postgres.sslCaFile')}), verify-ca or require`;
  }
  if (errorMessage(err) === NO_TLS) return `this server does not offer TLS: enable ssl on it, or set ${sslmode} prefer or disable (or take sslmode out of postgres.url)`;
  return undefined;
}

/**
 * A connection refused for its configuration by pg itself, before PostgreSQL could answer (the next attempt fails
 * the same way): the fix, else undefined. The server asked for a password and none was given.
 */
export function credentialsFix(err: unknown): string | undefined {
  if (!/password must be a string/i.test(errorMessage(err))) return undefined;
  return `PostgreSQL asks this role for a password and none was given: put it in postgres.url, or set ${settingRef('postgres.passwordFile')} or PGPASSWORD`;
}

/**
 * The text PostgreSQL writes, as the decoder and the row mapper read it (pgoutput on the replication connection,
 * query results for republish): rendered with the session's settings, which a database's or role's (ALTER DATABASE
 * … SET) would otherwise choose. In a LATIN1 database 'ä' arrived as one byte and became U+FFFD in the headers, and
 * a DateStyle of SQL, DMY made every mapped timestamp a poison event. Startup options win over those settings.
 */
const TEXT_SETTINGS = '-c client_encoding=UTF8 -c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres -c bytea_output=hex -c extra_float_digits=3';

/**
 * `config` with TEXT_SETTINGS among its startup options, after the URL's own `options` (the operations guide's
 * `?options=-c wal_sender_timeout=10s`) and PGOPTIONS, whose settings are kept. pg lets a URL parameter replace the config's
 * field, so such a URL dropped TEXT_SETTINGS; the parameter moves into the field instead. Last wins: a text
 * setting in the URL gives way to the relay's.
 */
export function withTextSettings(config: pg.ClientConfig): pg.ClientConfig {
  let { connectionString } = config;
  let urlOptions: string | null = null;
  if (connectionString !== undefined && URL.canParse(connectionString)) {
    const url = new URL(connectionString);
    urlOptions = url.searchParams.get('options');
    if (urlOptions !== null) {
      url.searchParams.delete('options');
      connectionString = url.toString();
    }
  }
  // PGOPTIONS too, which pg reads only when no options are given (and here they always are).
  return { ...config, connectionString, options: [urlOptions, config.options ?? process.env.PGOPTIONS, TEXT_SETTINGS].filter(Boolean).join(' ') };
}
