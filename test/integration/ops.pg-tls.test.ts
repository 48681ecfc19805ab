import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { useDatabase } from '../support/database.js';
import { insertEvents, setupOutbox, waitForConfirmedAll } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic } from '../support/services.js';

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
