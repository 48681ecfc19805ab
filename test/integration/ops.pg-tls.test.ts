import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PostgresServer, waitUntil } from '../../stack/index.js';
import { runCli } from '../support/cli.js';
import { useDatabase } from '../support/database.js';
import { insertEvents, setupOutbox, waitForConfirmedAll } from '../support/outbox.js';
import { killAllRelays, startRelay, type RelayProcess } from '../support/relay-process.js';
import { createDatabase, readTopic, stack, uniqueName, type TestDatabase } from '../support/services.js';

/** The test stack's PostgreSQL has no TLS (ssl = off): what libpq's sslmode does against such a server. */
describe('postgres.sslmode against a server without TLS', () => {
  const db = useDatabase('tls');

  it('prefer connects in plain text, as libpq does: the relay streams (replication and heartbeat connections) and an operator command runs', async () => {
    const setup = await setupOutbox(db(), { extraArgs: ['--postgres-sslmode', 'prefer', '--heartbeat-interval', '200ms'] });
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL', 60_000);
    const [event] = await insertEvents(db(), 1);
    await waitForConfirmedAll(db(), setup.slot, 60_000);
    expect((await readTopic(setup.topic, { expected: 1, settleMs: 0 })).map((r) => r.key)).toEqual([event!.id]);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
    // Before, pg insisted on TLS: the relay never streamed.
    expect(relay.logs.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.msg)).toEqual([]);
    const list = await runCli(['slot', 'list', '--postgres-url', db().url, '--postgres-sslmode', 'prefer']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain(setup.slot);
  });

  it('require refuses to connect without TLS, naming the cause', async () => {
    const list = await runCli(['slot', 'list', '--postgres-url', db().url, '--postgres-sslmode', 'require']);
    expect(list.code).not.toBe(0);
    expect(list.stderr).toMatch(/PG_CONNECT_FAILED: cannot connect to PostgreSQL: The server does not support SSL connections/);
  });
});

/** The role the relay connects as on the TLS server: pg_hba.conf refuses it any connection without TLS. */
const TLS_ROLE = 'outbox_tls';

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A CA, a server certificate it signed for the host name localhost only (no IP address: a connection to 127.0.0.1
 * with verify-full must fail on the name), and a second CA that signed nothing of the server's.
 */
function makeCertificates(dir: string): { ca: string; otherCa: string; cert: string; key: string } {
  const ca = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=outbox-relay test CA', ...ca, '-keyout', 'ca.key', '-out', 'ca.crt']);
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=outbox-relay other CA', ...ca, '-keyout', 'other-ca.key', '-out', 'other-ca.crt']);
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr']);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost\n');
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'server.ext', '-out', 'server.crt']);
  // PostgreSQL refuses a key file others can read, and reads it as the user it runs as (postgres, when we are root).
  const key = join(dir, 'server.key');
  chmodSync(key, 0o600);
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(key, uid, gid);
  }
  chmodSync(dir, 0o755);
  return { ca: join(dir, 'ca.crt'), otherCa: join(dir, 'other-ca.crt'), cert: join(dir, 'server.crt'), key };
}

// A server of its own: the stack's has no TLS.
describe.skipIf(!stack().owned.postgres)('postgres.sslmode against a server with TLS (its own, TLS required of the relay\'s role)', () => {
  let dir: string;
  let certs: ReturnType<typeof makeCertificates>;
  let server: PostgresServer;
  let db: TestDatabase;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'relay-pgtls-'));
    certs = makeCertificates(dir);
    server = new PostgresServer({
      name: uniqueName('pgtls'),
      settings: { ssl: 'on', ssl_cert_file: certs.cert, ssl_key_file: certs.key },
      hba: [`hostnossl all ${TLS_ROLE} 127.0.0.1/32 reject`],
    });
    await server.start();
    db = await createDatabase('pgtls', server.url());
    await db.query(`CREATE ROLE ${TLS_ROLE} SUPERUSER LOGIN REPLICATION`);
  }, 300_000);
  afterEach(killAllRelays);
  afterAll(async () => {
    await db?.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active');
    await db?.close();
    await server?.stop();
    server?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The test database's URL as the TLS role, at `host`. */
  function tlsUrl(host: 'localhost' | '127.0.0.1'): string {
    const url = new URL(db.url);
    url.username = TLS_ROLE;
    url.hostname = host;
    return url.toString();
  }

  /** setupOutbox's relay flags, with the URL of the TLS role at `host`. */
  async function tlsSetup(host: 'localhost' | '127.0.0.1', extraArgs: string[]) {
    const setup = await setupOutbox(db, { extraArgs });
    return { ...setup, args: setup.args.map((a) => (a === db.url ? tlsUrl(host) : a)) };
  }

  /** backend_type, application_name and ssl of every connection of the TLS role. */
  async function tlsRoleConnections(): Promise<{ backend_type: string; application_name: string; ssl: boolean }[]> {
    const { rows } = await db.query<{ backend_type: string; application_name: string; ssl: boolean }>(
      `SELECT a.backend_type, a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
       WHERE a.usename = $1 ORDER BY a.backend_type, a.application_name`,
      [TLS_ROLE],
    );
    return rows;
  }

  it('verify-full with the CA that signed the certificate, the host name matching: the replication and heartbeat connections use TLS, events reach Kafka, an operator command runs', async () => {
    const tls = ['--postgres-sslmode', 'verify-full', '--postgres-ssl-ca-file', certs.ca];
    const setup = await tlsSetup('localhost', [...tls, '--heartbeat-interval', '200ms']);
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL', 60_000);
    const [event] = await insertEvents(db, 1);
    await waitForConfirmedAll(db, setup.slot, 60_000);
    expect((await readTopic(setup.topic, { expected: 1, settleMs: 0 })).map((r) => r.key)).toEqual([event!.id]);
    await waitUntil('the heartbeat connection', async () => (await tlsRoleConnections()).some((c) => c.application_name === 'outbox-relay-heartbeat'), 60_000, 100);
    const connections = await tlsRoleConnections();
    expect(connections.filter((c) => c.backend_type === 'walsender').map((c) => [c.application_name.startsWith('outbox-relay ') && c.application_name.endsWith(`/${setup.slot}`), c.ssl])).toEqual([[true, true]]);
    expect(connections.filter((c) => c.application_name === 'outbox-relay-heartbeat').map((c) => [c.backend_type, c.ssl])).toEqual([['client backend', true]]);
    expect(connections.every((c) => c.ssl), JSON.stringify(connections)).toBe(true);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
    expect(relay.logs.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.msg)).toEqual([]);

    const list = await runCli(['slot', 'list', '--postgres-url', tlsUrl('localhost'), ...tls]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain(setup.slot);
  });

  /** A relay that could not connect: exit 1 at once (no reconnect: a certificate or a refusal does not change), one error line. */
  async function expectRelayRefused(relay: RelayProcess): Promise<{ code: unknown; err: string; fix: string }> {
    expect(await relay.exitCode(60_000), relay.dump()).toBe(1);
    const errors = relay.logs.filter((l) => l.level === 'error');
    expect(errors, relay.dump()).toHaveLength(1);
    expect(relay.logs.filter((l) => l.level === 'warn').map((l) => l.msg), relay.dump()).toEqual([]);
    return { code: errors[0]!.code, err: String(errors[0]!.err), fix: String(errors[0]!.fix) };
  }

  it('verify-full with a CA that did not sign the certificate: the relay exits at once, and an operator command fails, naming the certificate and postgres.sslCaFile', async () => {
    const tls = ['--postgres-sslmode', 'verify-full', '--postgres-ssl-ca-file', certs.otherCa];
    // Before, the relay retried the certificate as an outage for retry.maxDuration, then gave up with RETRIES_EXHAUSTED
    // and "check that PostgreSQL is up and reachable".
    const setup = await tlsSetup('localhost', [...tls, '--retry-max-duration', '2s']);
    const refused = await expectRelayRefused(startRelay(setup.args));
    expect(refused.code).toBe('PG_CONNECT_FAILED');
    expect(refused.err).toMatch(/^TLS to PostgreSQL for .* failed: unable to verify the first certificate$/);
    expect(refused.fix).toMatch(/CA certificate .* that signed the server's certificate as postgres\.sslCaFile \(--postgres-ssl-ca-file/);

    const list = await runCli(['slot', 'list', '--postgres-url', tlsUrl('localhost'), ...tls]);
    expect(list.code).toBe(1);
    expect(list.stderr).toMatch(/PG_CONNECT_FAILED: cannot connect to PostgreSQL: unable to verify the first certificate\n {2}fix: give the CA certificate .* as postgres\.sslCaFile/);
  });

  it('verify-full to 127.0.0.1, which the certificate does not name, fails on the host name; verify-ca with the same CA connects', async () => {
    const full = ['--postgres-sslmode', 'verify-full', '--postgres-ssl-ca-file', certs.ca];
    const setup = await tlsSetup('127.0.0.1', [...full, '--retry-max-duration', '2s']);
    const refused = await expectRelayRefused(startRelay(setup.args));
    expect(refused.code).toBe('PG_CONNECT_FAILED');
    expect(refused.err).toMatch(/failed: Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.1 is not in the cert's list/);
    expect(refused.fix).toMatch(/host name its certificate lists \(subjectAltName\), or set postgres\.sslmode .* verify-ca/);
    const list = await runCli(['slot', 'list', '--postgres-url', tlsUrl('127.0.0.1'), ...full]);
    expect(list.code).toBe(1);
    expect(list.stderr).toMatch(/PG_CONNECT_FAILED: cannot connect to PostgreSQL: Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.1 is not in the cert's list.*\n {2}fix: .*subjectAltName/);

    const ca = await runCli(['slot', 'list', '--postgres-url', tlsUrl('127.0.0.1'), '--postgres-sslmode', 'verify-ca', '--postgres-ssl-ca-file', certs.ca]);
    expect(ca.code, ca.stderr).toBe(0);
    expect(ca.stdout).toContain(setup.slot);
  });

  it('require and prefer encrypt without verifying (no CA given), where a URL\'s sslmode=require verifies; disable meets pg_hba.conf\'s refusal, with a fix naming postgres.sslmode', async () => {
    // pg_hba.conf refuses the role without TLS: that they connect shows they use it.
    for (const mode of ['require', 'prefer']) {
      const list = await runCli(['slot', 'list', '--postgres-url', tlsUrl('127.0.0.1'), '--postgres-sslmode', mode]);
      expect(list.code, `${mode}: ${list.stderr}`).toBe(0);
    }
    // Without postgres.sslmode, the URL's sslmode is pg's: it takes require as verify-full, with the system's CAs.
    const urlMode = new URL(tlsUrl('localhost'));
    urlMode.searchParams.set('sslmode', 'require');
    const pgRequire = await runCli(['slot', 'list', '--postgres-url', urlMode.toString()]);
    expect(pgRequire.code).toBe(1);
    expect(pgRequire.stderr).toMatch(/PG_CONNECT_FAILED: cannot connect to PostgreSQL: unable to verify the first certificate\n {2}fix: give the CA certificate/);

    const setup = await tlsSetup('localhost', ['--postgres-sslmode', 'disable']);
    const refused = await expectRelayRefused(startRelay(setup.args));
    expect(refused.code).toBe('PG_CONNECT_FAILED');
    expect(refused.err).toMatch(/refused the connection for .*: pg_hba\.conf rejects connection for host "127\.0\.0\.1", user "outbox_tls", database "\w+", no encryption$/);
    expect(refused.fix).toMatch(/only over TLS: set postgres\.sslmode .* verify-full/);
    const list = await runCli(['slot', 'list', '--postgres-url', tlsUrl('localhost'), '--postgres-sslmode', 'disable']);
    expect(list.code).toBe(1);
    expect(list.stderr).toMatch(/PG_CONNECT_FAILED: cannot connect to PostgreSQL: pg_hba\.conf rejects connection .* no encryption\n {2}fix: pg_hba\.conf lets the role in only over TLS: set postgres\.sslmode/);
  });
});
