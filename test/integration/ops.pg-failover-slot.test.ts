import { afterAll, describe, expect, it } from 'vitest';
import { OTHER_POSTGRES_VERSIONS, PostgresServer, ensurePostgresBinaries, startStandby, waitUntil } from '../../stack/index.js';
import { formatLsn, parseLsn } from '../../src/lsn.js';
import { freePort } from '../../stack/ports.js';
import { runCli, runCliJson } from '../support/cli.js';
import { openDatabase, slotOn, type SyncedSlot } from '../support/failover.js';
import { committedIds, compareDelivery, currentWalLsn, insertEvents, slotConfirmedLsn } from '../support/outbox.js';
import { checkpointStore } from '../support/checkpoints.js';
import { killAllRelays, startRelay } from '../support/relay-process.js';
import { createDatabase, createTopic, readTopic, stack, uniqueName, type TestDatabase } from '../support/services.js';

/** The servers and databases the tests start, stopped and removed after the file. */
const servers: PostgresServer[] = [];
const databases: TestDatabase[] = [];
afterAll(async () => {
  await killAllRelays();
  await Promise.all(databases.map((d) => d.close().catch(() => undefined)));
  for (const server of servers) {
    await server.stop();
    server.destroy();
  }
});

// docs/operations.md "PostgreSQL primary failover" promises that a PostgreSQL 17 failover slot, synced to a
// streaming standby, lets the relay resume on the promoted standby with duplicates at most. This runs that
// procedure for real: a primary, a standby built from a cold copy of it, a relay on the primary, a crash of the
// primary (SIGKILL) and a promotion, then a relay on the new primary with the same slot and checkpoint topic.
describe.skipIf(!stack().owned.postgres)('PostgreSQL 17 failover slot: primary crash and standby promotion', () => {
  const binDir = ensurePostgresBinaries(OTHER_POSTGRES_VERSIONS[17]);

  it('the relay resumes on the promoted standby from the synced slot: every committed event delivered, duplicates only', async () => {
    const started = Date.now();
    const primary = new PostgresServer({ name: uniqueName('fo-primary'), binDir });
    servers.push(primary);
    await primary.start();
    // Before the copy: the standby gets the database and its outbox table with it.
    const db = await createDatabase('failover', primary.url());
    databases.push(db);
    const physical = uniqueName('standby');
    await db.query('SELECT pg_create_physical_replication_slot($1)', [physical]);

    const standby = await startStandby(primary, uniqueName('fo-standby'), {
      settings: {
        primary_conninfo: `host=127.0.0.1 port=${primary.port} user=postgres dbname=${db.name} application_name=standby`,
        primary_slot_name: physical,
        hot_standby_feedback: 'on',
        sync_replication_slots: 'on',
      },
      primarySettings: { synchronized_standby_slots: physical },
    });
    servers.push(standby);
    await waitUntil('the standby to stream from the primary', async () => (await db.query("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'")).rowCount === 1, 60_000, 200);
    const standbyDb = openDatabase(standby.url(db.name));
    databases.push(standbyDb);

    const [publication, slot, topic, checkpointTopic] = [uniqueName('pub'), uniqueName('slot'), uniqueName('topic'), uniqueName('ckpt')];
    // The documented procedure: setup --failover-slot makes the publication, then the slot as a failover slot.
    const connection = (url: string) => ['--postgres-url', url, '--slot', slot, '--publication', publication];
    const setup = await runCli(['setup', ...connection(db.url), '--failover-slot']);
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.stdout).toContain(`slot "${slot}": created`);
    expect(await slotOn(db, slot)).toMatchObject({ failover: true, synced: false });
    const onPrimary = await runCliJson<{ failover: boolean; synced: boolean }>(['slot', 'status', ...connection(db.url)]);
    expect(onPrimary.json).toMatchObject({ failover: true, synced: false });
    await createTopic(topic);
    const relayArgs = (url: string) => [
      'run', '--postgres-url', url, '--slot', slot, '--publication', publication, '--topic', topic,
      '--checkpoint-topic', checkpointTopic, '--kafka-brokers', stack().brokers.join(','), '--status-interval', '200ms',
    ];

    const first = startRelay(relayArgs(db.url));
    await first.waitForMessage('streaming from PostgreSQL');
    const before = await insertEvents(db, 20);
    expect(await readTopic(topic, { expected: before.length, settleMs: 0 })).toHaveLength(before.length);
    // Past the batch's WAL: a slot's position is above 0 from its creation on.
    const batchEnd = await currentWalLsn(db);
    await waitUntil('the primary\'s slot to confirm the first batch', async () => (await slotConfirmedLsn(db, slot)) >= batchEnd, 30_000, 100);
    const primaryConfirmed = await slotConfirmedLsn(db, slot);
    const syncStarted = Date.now();
    let synced: SyncedSlot | undefined;
    await waitUntil(
      'the standby\'s synced slot to reach the primary\'s confirmed position',
      async () => {
        synced = await slotOn(standbyDb, slot);
        return synced?.synced === true && synced.confirmed >= primaryConfirmed;
      },
      90_000,
      200,
    );
    // slot status on the standby shows its synced copy (it measured the lag with pg_current_wal_lsn(), which a standby refuses).
    const onStandby = await runCli(['slot', 'status', ...connection(standbyDb.url)]);
    expect(onStandby.code, onStandby.stderr).toBe(0);
    expect(onStandby.stdout).toMatch(/failover\s+yes/);
    expect(onStandby.stdout).toMatch(/synced\s+yes/);
    // status too, with the relay's state: it failed there (PG_QUERY_FAILED, exit 1) on pg_current_wal_lsn().
    const statusOnStandby = await runCliJson(['status', ...connection(standbyDb.url), '--relay-url', `http://127.0.0.1:${await freePort()}`]);
    expect(statusOnStandby.code, statusOnStandby.stderr).toBe(5);
    expect(statusOnStandby.json).toMatchObject({ inRecovery: true, slot: { name: slot, failover: true, synced: true }, relay: { reachable: false }, error: { code: 'RELAY_UNREACHABLE' } });
    expect(parseLsn(String(statusOnStandby.json.currentWalLsn))).toBeGreaterThanOrEqual(synced!.confirmed);
    console.log(`failover slot: synced on the standby ${((Date.now() - syncStarted) / 1000).toFixed(1)} s after the primary confirmed; failover=${synced!.failover}`);

    // Delivered on the primary, then at once the relay's crash: the synced slot and the checkpoint may lag these.
    // Then events the relay never saw, replicated to the standby, and the primary's crash.
    const during = await insertEvents(db, 30);
    expect(await readTopic(topic, { expected: before.length + during.length, settleMs: 0 })).toHaveLength(before.length + during.length);
    await first.kill();
    const undelivered = await insertEvents(db, 15);
    const { rows: walEnd } = await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    await waitUntil('the standby to replay the undelivered events', async () => {
      const { rows } = await standbyDb.query<{ lsn: string }>('SELECT pg_last_wal_replay_lsn()::text AS lsn');
      return parseLsn(rows[0]!.lsn) >= parseLsn(walEnd[0]!.lsn);
    }, 30_000, 100);
    const atCrash = { primary: await slotConfirmedLsn(db, slot), standby: (await slotOn(standbyDb, slot))?.confirmed ?? 0n };
    await primary.kill();
    const crashedAt = Date.now();

    const { rows: promoted } = await standbyDb.query<{ ok: boolean }>('SELECT pg_promote() AS ok');
    expect(promoted[0]!.ok).toBe(true);
    const afterPromotion = await slotOn(standbyDb, slot);
    console.log(
      `at the crash: primary slot confirmed ${atCrash.primary.toString(16)}, synced slot ${atCrash.standby.toString(16)}; ` +
        `after promotion: ${JSON.stringify({ ...afterPromotion, confirmed: afterPromotion?.confirmed.toString(16) })}`,
    );
    const after = await insertEvents(standbyDb, 25);

    const second = startRelay(relayArgs(standbyDb.url));
    const outcome = await Promise.race([
      second.waitForMessage('streaming from PostgreSQL', 90_000).then(() => 'streaming'),
      second.exited.then((code) => `exited ${code}`),
    ]);
    console.log(`relay on the new primary: ${outcome} ${((Date.now() - crashedAt) / 1000).toFixed(1)} s after the crash\n${second.logs.filter((l) => /checkpoint read|start position|error|warn/.test(`${l.msg} ${l.level}`)).map((l) => JSON.stringify(l)).join('\n')}`);
    expect(outcome, second.dump()).toBe('streaming');

    // Ground truth: what the new primary holds, the crash's lost tail (never replicated) included or not.
    const committed = await committedIds(standbyDb);
    const records = await readTopic(topic, { expected: committed.length, settleMs: 1000 });
    const delivery = compareDelivery(committed, records.map((r) => r.key));
    console.log(`after failover: ${committed.length} committed on the new primary, ${records.length} records, ${delivery.missing.length} missing, ${delivery.duplicates} duplicates, ${delivery.unexpected} not on the new primary; ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
    expect(delivery.missing, second.dump()).toEqual([]);
    expect(delivery.unexpected).toBe(0);
    // Re-sent: at most what the relay delivered after the synced slot's (or the checkpoint's) position.
    expect(delivery.duplicates).toBeLessThanOrEqual(during.length);
    expect(atCrash.standby).toBeLessThanOrEqual(atCrash.primary);
    expect(committed).toEqual(expect.arrayContaining([...before, ...during, ...undelivered, ...after].map((e) => e.id)));
  }, 600_000);

  it('setup --failover-slot and slot create --failover-slot refuse on PostgreSQL 15, naming the version; nothing created', async () => {
    const old = await createDatabase('failover15');
    databases.push(old);
    const [publication, slot] = [uniqueName('pub'), uniqueName('slot')];
    const connection = ['--postgres-url', old.url, '--slot', slot, '--publication', publication];
    const setup = await runCliJson<{ checks: { name: string; ok: boolean; detail: string }[] }>(['setup', ...connection, '--failover-slot']);
    expect(setup.code, setup.stderr).toBe(1);
    expect(setup.json.checks.filter((c) => !c.ok)).toEqual([expect.objectContaining({ name: 'failover slot', detail: expect.stringMatching(/^PostgreSQL 15\.\d+ has no failover slots \(PostgreSQL 17 or later\)$/) })]);
    await old.query(`CREATE PUBLICATION ${publication} FOR TABLE outbox WITH (publish = 'insert')`);
    const create = await runCliJson<{ error: { code: string; message: string; fix: string } }>(['slot', 'create', ...connection, '--failover-slot']);
    expect(create.code).toBe(2); // a usage error: the same command without the flag works
    expect(create.json.error).toMatchObject({ code: 'OPERATION_REFUSED', message: expect.stringMatching(/PostgreSQL 15\.\d+ has no failover slots/), fix: expect.stringContaining('leave out --failover-slot') });
    expect((await old.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).rowCount).toBe(0);
    const status = await runCliJson<Record<string, unknown>>(['slot', 'create', ...connection]);
    expect(status.json).toMatchObject({ created: true, slot: { failover: null, synced: null } });
  });
});

// docs/operations.md "PostgreSQL primary failover", before 17: the promoted standby has no slot, and setup makes one
// there. A relay started with the old checkpoint topic would start at the new slot, past everything the new primary
// holds between its checkpoint and the slot: the events the standby had received and those committed before setup.
describe.skipIf(!stack().owned.postgres)('PostgreSQL 15: a slot setup makes again on the promoted standby', () => {

  it('the relay with the old checkpoint topic exits 1 with PG_SLOT_RECREATED, the slot not moved; the fix as printed delivers every event', async () => {
    const primary = new PostgresServer({ name: uniqueName('re-primary') });
    servers.push(primary);
    await primary.start();
    const db = await createDatabase('recreated', primary.url());
    databases.push(db);
    const standby = await startStandby(primary, uniqueName('re-standby'));
    servers.push(standby);
    await waitUntil('the standby to stream from the primary', async () => (await db.query("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'")).rowCount === 1, 60_000, 200);
    const standbyDb = openDatabase(standby.url(db.name));
    databases.push(standbyDb);

    const [publication, slot, topic, checkpointTopic] = [uniqueName('pub'), uniqueName('slot'), uniqueName('topic'), uniqueName('ckpt')];
    const setupOn = (url: string) => runCli(['setup', '--postgres-url', url, '--slot', slot, '--publication', publication]);
    expect((await setupOn(db.url)).code).toBe(0);
    await createTopic(topic);
    const relayArgs = (url: string, checkpoints: string) => [
      'run', '--postgres-url', url, '--slot', slot, '--publication', publication, '--topic', topic,
      '--checkpoint-topic', checkpoints, '--kafka-brokers', stack().brokers.join(','), '--status-interval', '200ms',
    ];
    const first = startRelay(relayArgs(db.url, checkpointTopic));
    await first.waitForMessage('streaming from PostgreSQL');
    const delivered = await insertEvents(db, 5);
    expect(await readTopic(topic, { expected: delivered.length, settleMs: 0 })).toHaveLength(delivered.length);
    first.signal('SIGTERM');
    expect(await first.exitCode(), first.dump()).toBe(0);
    const checkpoint = (await checkpointStore(checkpointTopic).read(slot))!;
    expect(checkpoint).toMatchObject({ timeline: 1, commitTimeMs: expect.any(Number) as unknown });

    // Committed on the primary and received by the standby, never delivered; the primary's crash, the promotion,
    // events committed there, setup (a new slot), more events.
    const replicated = await insertEvents(db, 3);
    const primaryEnd = await currentWalLsn(db);
    await waitUntil('the standby to replay them', async () => {
      const { rows } = await standbyDb.query<{ lsn: string }>('SELECT pg_last_wal_replay_lsn()::text AS lsn');
      return parseLsn(rows[0]!.lsn) >= primaryEnd;
    }, 30_000, 100);
    await primary.kill();
    expect((await standbyDb.query('SELECT pg_promote() AS ok')).rows).toEqual([{ ok: true }]);
    const beforeSlot = await insertEvents(standbyDb, 3);
    expect((await setupOn(standbyDb.url)).code).toBe(0);
    const afterSlot = await insertEvents(standbyDb, 2);
    const made = await slotConfirmedLsn(standbyDb, slot);

    const refused = startRelay(relayArgs(standbyDb.url, checkpointTopic));
    expect(await refused.exitCode(), refused.dump()).toBe(1);
    const errors = refused.logs.filter((l) => l.level === 'error');
    expect(errors, refused.dump()).toEqual([expect.objectContaining({ msg: 'giving up', code: 'PG_SLOT_RECREATED' })]);
    expect(String(errors[0]!.err)).toContain(`was made on this server after it left timeline 1, where the relay had delivered up to ${formatLsn(checkpoint.lsn)}`);
    const fix = String(errors[0]!.fix);
    const since = /outbox-relay republish --since (\S+)/.exec(fix)?.[1];
    expect(since, fix).toBe(new Date(checkpoint.commitTimeMs! - 60_000).toISOString());
    expect(await slotConfirmedLsn(standbyDb, slot)).toBe(made);

    // The fix as printed: a new checkpoint topic, the relay (it starts at the slot), the republish.
    const recovered = startRelay(relayArgs(standbyDb.url, uniqueName('ckpt')));
    await recovered.waitForMessage('streaming from PostgreSQL');
    const republished = await runCli(['republish', '--postgres-url', standbyDb.url, '--topic', topic, '--kafka-brokers', stack().brokers.join(','), '--since', since!]);
    expect(republished.code, republished.stdout + republished.stderr).toBe(0);
    // Once each from the relays (what the first delivered, what the new slot streams), and every row again from the republish.
    const all = [...delivered, ...replicated, ...beforeSlot, ...afterSlot];
    const records = await readTopic(topic, { expected: delivered.length + afterSlot.length + all.length, settleMs: 500 });
    expect(new Set(records.map((r) => r.key))).toEqual(new Set(all.map((e) => e.id)));
    recovered.signal('SIGTERM');
    expect(await recovered.exitCode(), recovered.dump()).toBe(0);
  }, 300_000);
});
