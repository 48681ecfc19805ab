import type { Socket } from 'node:net';
import type pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { preferTls, withTextSettings } from '../../src/source/pg-connect.js';
import { connectBounded } from '../../src/source/pg-timeouts.js';
import { closeFakePgServers, fakePgServer } from '../support/fake-pg-server.js';

const TEXT = '-c client_encoding=UTF8 -c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres -c bytea_output=hex -c extra_float_digits=3';

describe("the relay's text settings among a connection's startup options", () => {
  afterEach(() => void delete process.env.PGOPTIONS);

  it("the URL's options parameter moves into the field, before the text settings (pg let the URL's replace them)", () => {
    const config = withTextSettings({ connectionString: 'postgres://relay:p%40ss@db:5433/app?sslmode=disable&options=-c%20wal_sender_timeout%3D10s' });
    expect(config.options).toBe(`-c wal_sender_timeout=10s ${TEXT}`);
    expect(new URL(config.connectionString!).searchParams.get('options')).toBeNull();
    expect(config.connectionString).toBe('postgres://relay:p%40ss@db:5433/app?sslmode=disable');
  });

  it('PGOPTIONS is kept too (pg reads it only when no options are given, and the relay always gives some)', () => {
    process.env.PGOPTIONS = '-c statement_timeout=5s';
    expect(withTextSettings({ host: 'db' }).options).toBe(`-c statement_timeout=5s ${TEXT}`);
  });

  it('a URL without options is left as it is', () => {
    const url = 'postgres://relay@db/app?sslmode=require';
    expect(withTextSettings({ connectionString: url })).toEqual({ connectionString: url, options: TEXT });
  });
});

describe('postgres.sslmode=prefer against a server without TLS', () => {
  afterEach(closeFakePgServers);

  /** The socket under a pg client: destroyed once the client closed it. */
  const socketOf = (client: pg.Client) => (client as unknown as { connection: { stream: Socket } }).connection.stream;

  it('closes the plain-text client whose connect failed, as well as the refused TLS one', async () => {
    const clients: pg.Client[] = [];
    const config = { ...(await fakePgServer('refuses')), ssl: preferTls() };
    const error = await connectBounded(config, 'a query', (client) => void clients.push(client)).catch((err: unknown) => err);
    // The plain attempt's refusal: the fallback ran.
    expect(error).toMatchObject({ code: '28P01' });
    expect(clients).toHaveLength(2);
    // Before, the plain client's socket was left open: one more per reconnect of a relay whose login is refused.
    expect(clients.map((client) => socketOf(client).destroyed)).toEqual([true, true]);
  });
});
