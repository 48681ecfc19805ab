import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PostgresServer, waitUntil } from '../../stack/index.js';
import { formatLsn } from '../../src/lsn.js';
import { runCli, runCliJson } from '../support/cli.js';
import { useDatabaseOn, useFreshDatabase } from '../support/database.js';
import { httpArgs, metricValue, scrape } from '../support/ops-http.js';
import { checkpointStore } from '../support/checkpoints.js';
import { insertEvents, setupOutbox, waitForConfirmedAll } from '../support/outbox.js';
import { killAllRelays, startRelay } from '../support/relay-process.js';
import { shellWords } from '../support/shell-words.js';
import { createDatabase, readTopic, stack, uniqueName, type TestDatabase } from '../support/services.js';

/** WAL churn past max_slot_wal_keep_size while no relay reads `slot`, until a checkpoint invalidates it. */
async function removeWalUnder(db: TestDatabase, slot: string): Promise<void> {
  await db.query('CREATE TABLE IF NOT EXISTS churn (pad text)');
  await waitUntil(
    'the slot to be invalidated',
    async () => {
      await db.query(`INSERT INTO churn SELECT repeat(md5(g::text), 64) FROM generate_series(1, 4000) g`);
      await db.query('SELECT pg_switch_wal()');
      await db.query('CHECKPOINT');
      const { rows } = await db.query<{ wal_status: string }>('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      return rows[0]?.wal_status === 'lost';
    },
    90_000,
    0,
  );
}

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
    await removeWalUnder(db, setup.slot);

    const http = await httpArgs();
    const relay = startRelay([...setup.args, ...http.args]);
    const error = await relay.waitForLog((l) => l.level === 'error', 30_000, 'the slot-lost error');
    expect(error.code).toBe('PG_SLOT_LOST');
    // PostgreSQL 15 has no invalidation_reason: WAL removal is its only cause.
    expect(JSON.stringify(error)).toContain('(invalidation_reason wal_removed): PostgreSQL removed WAL it still needed (max_slot_wal_keep_size exceeded)');
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
    expect(status.json).toMatchObject({ walStatus: 'lost', invalidationReason: 'wal_removed' });

    // Steps 1 and 2 as printed, in a shell without the relay's flags: they act on its slot, not on the default one
    // (here another relay's, which slot drop --force dropped before).
    await db.query("SELECT pg_create_logical_replication_slot('outbox_relay', 'pgoutput')");
    const steps = /1\) outbox-relay (slot drop[^;]*); 2\) outbox-relay (slot create[^;]*); 3\)/.exec(String(error.fix));
    for (const step of [steps![1]!, steps![2]!]) {
      const ran = await runCli([...shellWords(step), '--postgres-url', db.url]);
      expect(ran.code, step + ran.stdout + ran.stderr).toBe(0);
    }
    const slots = await db.query<{ slot_name: string; wal_status: string }>("SELECT slot_name, wal_status FROM pg_replication_slots WHERE slot_name IN ($1, 'outbox_relay') ORDER BY slot_name = 'outbox_relay'", [setup.slot]);
    expect(slots.rows.map((r) => [r.slot_name, r.wal_status === 'lost'])).toEqual([[setup.slot, false], ['outbox_relay', false]]);
    await db.query("SELECT pg_drop_replication_slot('outbox_relay')");
  });
});

// From PostgreSQL 16 wal_status is 'lost' for every cause; 18 adds idle_replication_slot_timeout (in seconds,
// checked at each checkpoint), the cheapest real one besides WAL removal. Before, the relay blamed
// max_slot_wal_keep_size for it and told the operator to raise that.
describe.skipIf(!stack().owned.postgres)('relay: a slot invalidated for idle_replication_slot_timeout (PostgreSQL 18)', () => {
  const db = useDatabaseOn(18, 'idle18', { idle_replication_slot_timeout: '1s' });

  it('the relay halts naming idle_timeout and its fix, not max_slot_wal_keep_size; slot status and list show the reason', async () => {
    const setup = await setupOutbox(db());
    await db().query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES (gen_random_uuid(), 'order', 'x', 'Created', '{}')`);
    await waitUntil(
      'the idle slot to be invalidated',
      async () => {
        await new Promise((r) => setTimeout(r, 1200));
        await db().query('CHECKPOINT');
        const { rows } = await db().query<{ wal_status: string }>('SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1', [setup.slot]);
        return rows[0]?.wal_status === 'lost';
      },
      30_000,
      0,
    );

    const relay = startRelay(setup.args);
    const error = await relay.waitForLog((l) => l.level === 'error', 30_000, 'the slot-lost error');
    expect(error.code).toBe('PG_SLOT_LOST');
    const line = JSON.stringify(error);
    expect(line).toContain('(invalidation_reason idle_timeout): no client streamed from it for longer than idle_replication_slot_timeout');
    expect(line).not.toContain('max_slot_wal_keep_size');
    expect(String(error.fix)).toContain('raise idle_replication_slot_timeout');
    expect(String(error.fix)).toContain('outbox-relay republish --since');
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(1);

    const connection = ['--postgres-url', db().url, '--slot', setup.slot];
    const status = await runCliJson(['slot', 'status', ...connection]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.json).toMatchObject({ walStatus: 'lost', invalidationReason: 'idle_timeout', safeWalSize: null });
    const text = await runCli(['slot', 'status', ...connection]);
    expect(text.stdout).toMatch(/^invalidation_reason\s+idle_timeout$/m);
    const list = await runCli(['slot', 'list', ...connection]);
    expect(list.stdout).toContain('lost (idle_timeout)');
  });
});

// WAL removal on 16 and 17, whose columns differ: 17 names it (invalidation_reason); 16 has only `conflicting`,
// which it sets for a logical slot lost to WAL removal too (the reason is read from the restart_lsn it clears).
describe.skipIf(!stack().owned.postgres).each([16, 17] as const)('slot status: a slot lost to WAL removal on PostgreSQL %i', (major) => {
  const db = useDatabaseOn(major, `lost${major}`, { max_slot_wal_keep_size: '1MB', wal_keep_size: '0' });

  it('names wal_removed, and the error blames max_slot_wal_keep_size', async () => {
    const slot = uniqueName('slot');
    await db().query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    await removeWalUnder(db(), slot);
    const connection = ['--postgres-url', db().url, '--slot', slot];
    const status = await runCliJson(['slot', 'status', ...connection]);
    expect(status.json).toMatchObject({ walStatus: 'lost', invalidationReason: 'wal_removed' });
    // advance refuses a lost slot with the same error as the relay's pre-flight.
    const advance = await runCliJson<{ error: { code: string; message: string } }>(['slot', 'advance', '0/0', '--json', ...connection]);
    expect(advance.json.error).toMatchObject({ code: 'PG_SLOT_LOST', message: expect.stringContaining('(invalidation_reason wal_removed): PostgreSQL removed WAL it still needed (max_slot_wal_keep_size exceeded)') });
  });
});

describe('relay: a slot that had delivered and is gone (a failover to a server without it, a drop)', () => {
  const db = useFreshDatabase('gone');
  afterEach(killAllRelays);

  it('exits 1 with PG_SLOT_MISSING naming its checkpoint and the recovery; followed as printed, every event arrives', async () => {
    const setup = await setupOutbox(db());
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    const delivered = await insertEvents(db(), 5);
    await waitForConfirmedAll(db(), setup.slot);
    relay.signal('SIGTERM');
    expect(await relay.exitCode(), relay.dump()).toBe(0);
    const checkpoint = await checkpointStore('outbox-relay.checkpoints').read(setup.slot);
    expect(checkpoint?.commitTimeMs).toBeDefined();

    // Gone from outside the relay; the events committed meanwhile no slot will ever stream.
    await db().query('SELECT pg_drop_replication_slot($1)', [setup.slot]);
    const gap = await insertEvents(db(), 3);
    const restarted = startRelay(setup.args);
    expect(await restarted.exitCode(), restarted.dump()).toBe(1);
    const errors = restarted.logs.filter((l) => l.level === 'error');
    expect(errors, restarted.dump()).toEqual([expect.objectContaining({ msg: 'giving up', code: 'PG_SLOT_MISSING', checkpointLsn: formatLsn(checkpoint!.lsn) })]);
    expect(String(errors[0]!.err)).toContain(`replication slot "${setup.slot}" does not exist, but the checkpoint topic "outbox-relay.checkpoints" holds its delivered position (${formatLsn(checkpoint!.lsn)}, commit time ${new Date(checkpoint!.commitTimeMs!).toISOString()}): the slot was lost`);
    const fix = String(errors[0]!.fix);
    const since = /outbox-relay republish --since (\S+)/.exec(fix)?.[1];
    expect(since, fix).toBe(new Date(checkpoint!.commitTimeMs! - 60_000).toISOString());
    expect(fix).toContain('1) point checkpoint.topic (--checkpoint-topic) at a new topic');

    // The recovery as printed: a new checkpoint topic, setup (as printed, with the relay's slot, publication and
    // table settings, only where PostgreSQL is added), the relay, then the republish.
    const args = [...setup.args, '--checkpoint-topic', uniqueName('ckpt')];
    const printedSetup = shellWords(/2\) outbox-relay (setup .*?) \(with --failover-slot/.exec(fix)![1]!);
    expect(printedSetup).toEqual(expect.arrayContaining(['--slot', setup.slot, '--publication', setup.publication]));
    const created = await runCli([...printedSetup, '--postgres-url', db().url]);
    expect(created.code, created.stdout + created.stderr).toBe(0);
    const recovered = startRelay(args);
    await recovered.waitForMessage('streaming from PostgreSQL');
    const after = await insertEvents(db(), 2);
    // As printed (the relay's table, columns and topic came from its flags), with only where the services are added,
    // in a shell whose environment filters out every event and makes tombstones and CloudEvents: the printed flags
    // unset the filter the relay has none of, and give its null-payload and envelope settings.
    const printed = shellWords(/outbox-relay (republish .*?) \(consumers dedupe/.exec(fix)![1]!);
    const elsewhere = { OUTBOX_RELAY_FILTER_EXCLUDE_TYPES: '*', OUTBOX_RELAY_ENVELOPE_MODE: 'cloudevents', OUTBOX_RELAY_MAPPING_NULL_PAYLOAD: 'tombstone' };
    const republished = await runCli([...printed, '--postgres-url', db().url, '--kafka-brokers', stack().brokers.join(',')], elsewhere);
    expect(republished.code, republished.stdout + republished.stderr).toBe(0);
    // Once each from the relays, and every row since the printed time again from the republish.
    const records = await readTopic(setup.topic, { expected: (delivered.length + after.length) * 2 + gap.length, settleMs: 500 });
    expect(new Set(records.map((r) => r.key))).toEqual(new Set([...delivered, ...gap, ...after].map((e) => e.id)));
    expect(records.filter((r) => r.headers['ce_specversion'] !== undefined)).toEqual([]);
    recovered.signal('SIGTERM');
    expect(await recovered.exitCode(), recovered.dump()).toBe(0);
  });
});
