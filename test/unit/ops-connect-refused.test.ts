import { describe, expect, it } from 'vitest';
import { freePort } from '../../stack/ports.js';
import { withClient } from '../../src/ops/connection.js';

describe('an operator command whose PostgreSQL does not accept connections (ECONNREFUSED)', () => {
  it('says that no server accepts connections at that host and port, not to check the password and pg_hba.conf', async () => {
    const port = await freePort();
    const error = await withClient({ host: '127.0.0.1', port, user: 'u', database: 'd', connectionTimeoutMillis: 5000 }, 'a query of outbox-relay status', async () => undefined).then(
      () => expect.unreachable('connected to a closed port'),
      (err: unknown) => err as { code: string; message: string; hint: string },
    );
    expect(error.code).toBe('PG_CONNECT_FAILED');
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.hint).toBe(
      `no PostgreSQL server is accepting connections at 127.0.0.1:${port}: check that it is running and listens there (listen_addresses, port), and the host and port in --postgres-url / OUTBOX_RELAY_POSTGRES_URL / DATABASE_URL / PG* variables`,
    );
    expect(error.hint).not.toContain('pg_hba.conf');
  });
});
