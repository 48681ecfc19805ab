import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';

/** AuthenticationOk, then ReadyForQuery (idle): a server that trusts the relay and is ready for a query. */
const STARTUP_DONE = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0, 0x5a, 0, 0, 0, 5, 0x49]);

/** An ErrorResponse with these fields (severity, SQLSTATE, message). */
function errorResponse(severity: string, sqlstate: string, message: string): Buffer {
  const fields = Buffer.from(`S${severity}\0C${sqlstate}\0M${message}\0\0`);
  const header = Buffer.alloc(5);
  header.write('E');
  header.writeInt32BE(4 + fields.length, 1);
  return Buffer.concat([header, fields]);
}

/** The start-up refused: the password was wrong. */
const AUTH_FAILED = errorResponse('FATAL', '28P01', 'password authentication failed for user "relay"');

/** A query's end without rows (CommandComplete), then ReadyForQuery (idle). */
const NO_ROWS = Buffer.from([0x43, 0, 0, 0, 13, ...Buffer.from('SELECT 0\0'), 0x5a, 0, 0, 0, 5, 0x49]);

/** What a backend sends before it exits on pg_terminate_backend() or a fast shutdown. */
const TERMINATED = errorResponse('FATAL', '57P01', 'terminating connection due to administrator command');

/** A server shutting down refuses every new connection's start-up. */
const SHUTTING_DOWN = errorResponse('FATAL', '57P03', 'the database system is shutting down');

/** A standby's answer to pg_current_wal_lsn(), then ReadyForQuery (idle). */
const IN_RECOVERY = Buffer.concat([errorResponse('ERROR', '55000', 'recovery is in progress'), Buffer.from([0x5a, 0, 0, 0, 5, 0x49])]);

/** SSLRequest's code (PostgreSQL's protocol, 1234.5679): the client asks for TLS before its start-up. */
const SSL_REQUEST = 80877103;

/**
 * How the fake server answers each connection after the TCP accept (its kernel still answers), after an 'N' to
 * an SSLRequest (it has no TLS, as the test stack's PostgreSQL):
 * - `silent`: nothing at all (a stopped or stuck postmaster);
 * - `startup`: completes the start-up, then answers no query;
 * - `closes`: completes the start-up, then drops the connection at the first query (a server restart);
 * - `refuses`: refuses the start-up (wrong password) and leaves its end of the connection open, as a server that
 *   has not closed it yet;
 * - `standby`: completes the start-up, then answers every query as a standby answers pg_current_wal_lsn();
 * - `terminates`: the first connection's first query ends it as pg_terminate_backend() does (57P01); later
 *   connections answer every query with no rows;
 * - `shuts down`: the same end (a fast shutdown), and later start-ups are refused as a server shutting down does.
 */
export type FakePgAnswers = 'silent' | 'startup' | 'closes' | 'refuses' | 'standby' | 'terminates' | 'shuts down';

const servers: { server: net.Server; sockets: Set<net.Socket> }[] = [];

/**
 * A "PostgreSQL" on a local port answering as `answers` says; connection settings with a statement_timeout of 100 ms
 * and a connect timeout of 100 ms for the `silent` server, whose test waits for it, and 1 s for the others, which
 * answer the start-up: beside the integration files (the suite interleaves the projects) 100 ms for a local connect
 * and start-up failed now and then.
 */
export async function fakePgServer(answers: FakePgAnswers): Promise<pg.ClientConfig> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    const first = ++connections === 1;
    const ended = answers === 'terminates' || answers === 'shuts down';
    let started = false;
    socket.on('data', (packet) => {
      if (answers === 'silent') return;
      if (packet.length === 8 && packet.readInt32BE(4) === SSL_REQUEST) return void socket.write('N');
      if (started) {
        if (answers === 'closes') socket.destroy();
        if (answers === 'standby') socket.write(IN_RECOVERY);
        if (ended) socket.write(first ? TERMINATED : NO_ROWS, () => first && socket.end());
        return;
      }
      started = true;
      if (answers === 'shuts down' && !first) return void socket.end(SHUTTING_DOWN);
      socket.write(answers === 'refuses' ? AUTH_FAILED : STARTUP_DONE);
    });
  });
  servers.push({ server, sockets });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // Query bound: statement_timeout + connectionTimeoutMillis (1.1 s; the silent server's is never reached).
  return { host: '127.0.0.1', port: (server.address() as AddressInfo).port, user: 'relay', database: 'app', connectionTimeoutMillis: answers === 'silent' ? 100 : 1000, statement_timeout: 100 };
}

/** Closes every fake server and its connections (afterEach). */
export async function closeFakePgServers(): Promise<void> {
  for (const { server, sockets } of servers.splice(0)) {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}
