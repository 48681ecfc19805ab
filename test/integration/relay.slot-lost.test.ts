import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PostgresServer, waitUntil } from '../../stack/index.js';
import { runCliJson } from '../support/cli.js';
import { httpArgs, metricValue, scrape } from '../support/ops-http.js';
import { setupOutbox } from '../support/outbox.js';
import { killAllRelays, startRelay } from '../support/relay-process.js';
import { createDatabase, stack, uniqueName, type TestDatabase } from '../support/services.js';

// Invalidating a slot needs a server with a small max_slot_wal_keep_size, so this file runs its own.
describe.skipIf(!stack().owned.postgres)('relay: an invalidated slot (wal_status = lost)', () => {
  const postgres = new PostgresServer({ name: uniqueName('lost'), settings: { max_slot_wal_keep_size: '32MB', wal_keep_size: '0' } });
  let db: TestDatabase;
  beforeAll(async () => {
    await postgres.start();
    db = await createDatabase('lost', postgres.url());
  });
  afterEach(killAllRelays);
  afterAll(async () => {
    await db.close();
    await postgres.stop();
    postgres.destroy();
  });

  it('stops with the recovery steps, stays down (no crash loop), and slot status shows it', async () => {
    const setup = await setupOutbox(db);
    // WAL churn past max_slot_wal_keep_size while no relay reads the slot; checkpoints remove the old segments.
    await db.query('CREATE TABLE churn (pad text)');
    await waitUntil(
      'the slot to be invalidated',
      async () => {
        await db.query(`INSERT INTO churn SELECT repeat(md5(g::text), 64) FROM generate_series(1, 4000) g`);
        await db.query('SELECT pg_switch_wal()');
        await db.query('CHECKPOINT');
        const { rows } = await db.query<{ wal_status: string }>('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [setup.slot]);
        return rows[0]?.wal_status === 'lost';
      },
      90_000,
      0,
    );

    const http = await httpArgs();
    const relay = startRelay([...setup.args, ...http.args]);
    const error = await relay.waitForLog((l) => l.level === 'error', 30_000, 'the slot-lost error');
    expect(error.code).toBe('PG_SLOT_LOST');
    expect(String(error.fix)).toContain('outbox-relay slot drop --force');
    expect(String(error.fix)).toContain('outbox-relay slot create');
    expect(String(error.fix)).toContain('republish');
    // Halted, not restarting: still alive after a while, with that one error and no reconnect attempts.
    await new Promise((r) => setTimeout(r, 3000));
    expect(relay.logs.filter((l) => l.level === 'error')).toHaveLength(1);
    expect(relay.logs.filter((l) => l.msg === 'replication connection lost: reconnecting')).toEqual([]);
    // What the OutboxRelaySlotLost alert fires on (deploy/prometheus/alerts.yaml).
    const metrics = await scrape(http.base);
    expect(metricValue(metrics, 'outbox_relay_slot_lost')).toBe(1);
    expect(metricValue(metrics, 'outbox_relay_state', { state: 'halted' })).toBe(1);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(1);

    const status = await runCliJson(['slot', 'status', '--postgres-url', db.url, '--slot', setup.slot]);
    expect(status.code).toBe(0);
    expect(JSON.stringify(status.json)).toContain('"lost"');
  });
});
