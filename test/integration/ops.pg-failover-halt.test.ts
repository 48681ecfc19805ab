import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OTHER_POSTGRES_VERSIONS, PostgresServer, ensurePostgresBinaries, startStandby, waitUntil } from '../../stack/index.js';
import { formatLsn, parseLsn } from '../../src/lsn.js';
import { runCli, runCliJson } from '../support/cli.js';
import { openDatabase, slotOn } from '../support/failover.js';
import { httpArgs, httpGet } from '../support/ops-http.js';
import { checkpointStore } from '../support/checkpoints.js';
import { currentWalLsn, insertEvents, slotConfirmedLsn } from '../support/outbox.js';
import { killAllRelays, startRelay } from '../support/relay-process.js';
import { createDatabase, createTopic, readTopic, stack, uniqueName, type TestDatabase } from '../support/services.js';
import { TcpProxy } from '../support/tcp-proxy.js';

// docs/operations.md "PostgreSQL primary failover" on PostgreSQL 17, beside ops.pg-failover-slot (a new relay on
// the promoted standby): a relay that keeps running through the failover and finds the synced slot on a new
// primary whose WAL ends before what the relay delivered halts with CHECKPOINT_AHEAD_OF_WAL, and a plain slot is
// turned into a failover slot in place with the statement setup's fix prints. One primary and standby for both.

const execFileAsync = promisify(execFile);

describe.skipIf(!stack().owned.postgres)('PostgreSQL 17 failover: a relay that kept running, and a plain slot made a failover slot', () => {
  const servers: PostgresServer[] = [];
  const databases: TestDatabase[] = [];
  const proxies: TcpProxy[] = [];
  let primary: PostgresServer;
  let standby: PostgresServer;
  let db: TestDatabase;
  let standbyDb: TestDatabase;
  /** The standby's way to the primary: cut, it receives no more WAL (a partition, a lagging replica). */
  let replication: TcpProxy;

  beforeAll(async () => {
    primary = new PostgresServer({ name: uniqueName('foh-primary'), binDir: ensurePostgresBinaries(OTHER_POSTGRES_VERSIONS[17]) });
    servers.push(primary);
    await primary.start();
    db = await createDatabase('failhalt', primary.url());
    databases.push(db);
    const physical = uniqueName('standby');
    await db.query('SELECT pg_create_physical_replication_slot($1)', [physical]);
    replication = await TcpProxy.start(primary.port);
    proxies.push(replication);
    // No synchronized_standby_slots on the primary: with it the relay would be sent nothing the standby lacks, and
    // the standby could not fall behind the relay. Its absence (or a slot a cluster manager keeps) is the case here.
    standby = await startStandby(primary, uniqueName('foh-standby'), {
      settings: {
        primary_conninfo: `host=127.0.0.1 port=${replication.port} user=postgres dbname=${db.name} application_name=standby`,
        primary_slot_name: physical,
        hot_standby_feedback: 'on',
        sync_replication_slots: 'on',
      },
    });
    servers.push(standby);
    await waitUntil('the standby to stream from the primary', async () => (await db.query("SELECT 1 FROM pg_stat_replication WHERE application_name = 'standby' AND state = 'streaming'")).rowCount === 1, 60_000, 200);
    standbyDb = openDatabase(standby.url(db.name));
    databases.push(standbyDb);
  });

  afterAll(async () => {
    await killAllRelays();
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(databases.map((d) => d.close().catch(() => undefined)));
    for (const server of servers) {
      await server.stop();
      server.destroy();
    }
  });

  it('setup --failover-slot on a plain slot fails with a fix whose ALTER_REPLICATION_SLOT, run as printed, makes it one at the same position', async () => {
    const [publication, slot] = [uniqueName('pub'), uniqueName('slot')];
    const connection = ['--postgres-url', db.url, '--slot', slot, '--publication', publication];
    const plain = await runCli(['setup', ...connection]);
    expect(plain.code, plain.stderr).toBe(0);
    const before = await runCliJson<{ failover: boolean; confirmedFlushLsn: string }>(['slot', 'status', ...connection]);
    expect(before.json).toMatchObject({ failover: false });

    const setup = await runCliJson<{ checks: { name: string; ok: boolean; detail: string; fix?: string }[] }>(['setup', ...connection, '--failover-slot']);
    expect(setup.code, setup.stderr).toBe(1);
    const failed = setup.json.checks.filter((c) => !c.ok);
    expect(failed).toEqual([expect.objectContaining({ name: 'failover slot', detail: `replication slot "${slot}" exists, but is not a failover slot: standbys do not sync it, and a failover loses it` })]);
    const fix = failed[0]!.fix!;
    expect(fix).toContain(`ALTER_REPLICATION_SLOT ${slot} (FAILOVER true)`);
    const create = await runCliJson<{ error: { code: string; message: string; fix: string } }>(['slot', 'create', ...connection, '--failover-slot']);
    expect(create.code).toBe(2);
    expect(create.json.error).toMatchObject({ code: 'OPERATION_REFUSED', fix });

    // The command as printed, through a shell (its quoting is part of it), with only <database> filled in; where
    // the server is comes from libpq's environment, as for an operator with PGHOST set.
    const command = /psql "[^"]*" -c '[^']*'/.exec(fix)?.[0];
    expect(command, fix).toBeDefined();
    const ran = await execFileAsync('sh', ['-c', command!.replace('<database>', db.name)], { env: { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(primary.port), PGUSER: 'postgres' } });
    expect(ran.stdout.trim()).toBe('ALTER_REPLICATION_SLOT');

    const after = await runCliJson<{ failover: boolean; confirmedFlushLsn: string }>(['slot', 'status', ...connection]);
    expect(after.json).toMatchObject({ failover: true, confirmedFlushLsn: before.json.confirmedFlushLsn });
    const again = await runCli(['setup', ...connection, '--failover-slot']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
  });

  it('a relay retrying through a promotion of a standby behind it halts with CHECKPOINT_AHEAD_OF_WAL, also once the new primary wrote past its position (another timeline), and so does a restart at its checkpoint; the synced slots are not moved', async () => {
    const started = Date.now();
    const publication = uniqueName('pub');
    /** Two relays on the same outbox, each with its own failover slot, topics and name that follows the primary. */
    const relays = await Promise.all(
      ['early', 'late'].map(async (name) => {
        const [slot, topic, checkpointTopic] = [uniqueName(`slot_${name}`), uniqueName('topic'), uniqueName('ckpt')];
        const setup = await runCli(['setup', '--postgres-url', db.url, '--slot', slot, '--publication', publication, '--failover-slot']);
        expect(setup.code, setup.stderr).toBe(0);
        await createTopic(topic);
        // The name that follows the primary: the relay's one URL, moved to the promoted standby below.
        const follower = await TcpProxy.start(primary.port);
        proxies.push(follower);
        const http = await httpArgs();
        const args = ['run', '--slot', slot, '--publication', publication, '--topic', topic, '--kafka-brokers', stack().brokers.join(','), '--status-interval', '200ms', '--retry-max-delay', '1s'];
        const relay = startRelay([...args, '--postgres-url', follower.url(db.url), '--checkpoint-topic', checkpointTopic, ...http.args]);
        return { slot, topic, checkpointTopic, follower, http, args, relay };
      }),
    );
    // `early` is moved to the new primary at once, whose WAL ends before what it delivered; `late` only once the
    // new primary wrote past that, on its own timeline.
    const [early, late] = relays as [(typeof relays)[0], (typeof relays)[0]];
    let exited = false;
    void early.relay.exited.then(() => (exited = true));
    await Promise.all(relays.map((r) => r.relay.waitForMessage('streaming from PostgreSQL')));

    const synced = await insertEvents(db, 10);
    for (const r of relays) expect(await readTopic(r.topic, { expected: synced.length, settleMs: 0 })).toHaveLength(synced.length);
    const firstEnd = await currentWalLsn(db);
    for (const r of relays) await waitUntil('the slot to confirm the first batch', async () => (await slotConfirmedLsn(db, r.slot)) >= firstEnd, 30_000, 100);
    const primaryConfirmed = await Promise.all(relays.map((r) => slotConfirmedLsn(db, r.slot)));
    // A running-xacts record lets the standby persist its copies of the new slots now, not at the next one the
    // background writer logs (every 15 s).
    await db.query('SELECT pg_log_standby_snapshot()');
    await waitUntil(
      "the standby's synced slots at the primary's confirmed positions",
      async () => {
        const copies = await Promise.all(relays.map((r) => slotOn(standbyDb, r.slot)));
        return copies.every((copy, i) => copy?.synced === true && copy.confirmed >= primaryConfirmed[i]!);
      },
      60_000,
      200,
    );

    // The standby falls behind: it receives nothing more, while the relays deliver (and confirm) more.
    replication.retarget(undefined);
    await waitUntil('the standby to stop streaming', async () => (await db.query("SELECT 1 FROM pg_stat_replication WHERE application_name = 'standby'")).rowCount === 0, 30_000, 100);
    const received = parseLsn((await standbyDb.query<{ lsn: string }>('SELECT pg_last_wal_receive_lsn()::text AS lsn')).rows[0]!.lsn);
    const behind = await insertEvents(db, 50, { payload: (i) => JSON.stringify({ n: i, pad: 'x'.repeat(1000) }) });
    for (const r of relays) expect(await readTopic(r.topic, { expected: synced.length + behind.length, settleMs: 0 })).toHaveLength(synced.length + behind.length);
    const delivered = await currentWalLsn(db);
    for (const r of relays) await waitUntil('the slot to confirm the second batch', async () => (await slotConfirmedLsn(db, r.slot)) >= delivered, 30_000, 100);
    // The checkpoint a restart reads: past the standby's WAL, recorded on timeline 1.
    const store = checkpointStore(early.checkpointTopic);
    await waitUntil('the checkpoint past the standby\'s WAL', async () => ((await store.read(early.slot))?.lsn ?? 0n) > received, 30_000, 200);
    const checkpoint = (await store.read(early.slot))!;
    expect(checkpoint.timeline).toBe(1);

    await primary.kill();
    const { rows: promoted } = await standbyDb.query<{ ok: boolean }>('SELECT pg_promote() AS ok');
    expect(promoted[0]!.ok).toBe(true);
    const walEnd = await currentWalLsn(standbyDb);
    const atPromotion = await Promise.all(relays.map((r) => slotOn(standbyDb, r.slot)));
    for (const slot of atPromotion) expect(slot).toMatchObject({ failover: true, synced: true });
    expect(walEnd).toBeLessThan(delivered);
    early.follower.retarget(standby.port);

    const halt = await early.relay.waitForLog((l) => l.level === 'error', 60_000, 'the halt');
    expect(halt).toMatchObject({
      msg: 'halted: nothing after the confirmed position was confirmed; fix the cause and restart',
      code: 'CHECKPOINT_AHEAD_OF_WAL',
      fix: expect.stringContaining('point checkpoint.topic (--checkpoint-topic) at a new topic for this server') as unknown,
      currentWalLsn: expect.any(String) as unknown,
    });
    expect(String(halt.err)).toMatch(/^the relay was to resume at \S+, but this PostgreSQL has written WAL only up to \S+: that position came from another server's WAL/);
    // The re-send starts a minute before the last commit the relay delivered (during this test).
    const since = (fix: unknown) => Date.parse(/outbox-relay republish --since (\S+) --publication /.exec(String(fix))?.[1] ?? '');
    expect(since(halt.fix), String(halt.fix)).toBeGreaterThanOrEqual(started - 60_000);
    expect(since(halt.fix)).toBeLessThanOrEqual(Date.now() - 60_000);
    expect(parseLsn(String(halt.resumeLsn))).toBeGreaterThanOrEqual(delivered);
    expect(parseLsn(String(halt.currentWalLsn))).toBeGreaterThanOrEqual(walEnd);
    expect(parseLsn(String(halt.currentWalLsn))).toBeLessThan(delivered);

    const readyz = await httpGet(`${early.http.base}/readyz`);
    expect(readyz.status).toBe(503);
    expect(JSON.parse(readyz.body)).toMatchObject({ state: 'halted', halt: { code: 'CHECKPOINT_AHEAD_OF_WAL', fix: halt.fix } });
    // Halted, not exited: it answered /readyz after its halt line, and stays up until stopped, as documented.
    expect(exited).toBe(false);
    expect((await slotOn(standbyDb, early.slot))?.confirmed).toBe(atPromotion[0]!.confirmed);

    // The new primary takes writes (the events a resume at the old position would pass over: their LSNs lie below
    // it, on timeline 2) and its WAL passes that position: the WAL end no longer tells.
    const gap = await insertEvents(standbyDb, 5);
    for (let i = 0; i < 5 && (await currentWalLsn(standbyDb)) <= delivered; i++) await standbyDb.query('SELECT pg_switch_wal()');
    expect(await currentWalLsn(standbyDb)).toBeGreaterThan(delivered);
    late.follower.retarget(standby.port);
    const lateHalt = await late.relay.waitForLog((l) => l.level === 'error', 60_000, 'the halt of the relay moved later');
    expect(lateHalt).toMatchObject({ msg: 'halted: nothing after the confirmed position was confirmed; fix the cause and restart', code: 'CHECKPOINT_AHEAD_OF_WAL', timeline: 1, currentTimeline: 2 });
    expect(String(lateHalt.err)).toMatch(/^the relay was to resume at \S+, confirmed on timeline 1, but this PostgreSQL \(timeline 2\) left timeline 1 at \S+: the WAL past it is another server's/);
    expect(parseLsn(String(lateHalt.resumeLsn))).toBeGreaterThanOrEqual(delivered);
    expect(since(lateHalt.fix), String(lateHalt.fix)).toBeGreaterThanOrEqual(started - 60_000);
    expect((await slotOn(standbyDb, late.slot))?.confirmed).toBe(atPromotion[1]!.confirmed);

    // docs/metrics.md: stopped, a halted relay exits 1 (the halt's line being the reason), with no drain.
    early.relay.signal('SIGTERM');
    expect(await early.relay.exitCode()).toBe(1);
    expect(early.relay.logs.map((l) => l.msg)).toContain('stopping a halted relay: nothing after the confirmed position is confirmed; the next start reads on from it');
    late.relay.signal('SIGTERM');
    expect(await late.relay.exitCode()).toBe(1);

    // Restarted with its checkpoint topic, the relay would start at the old primary's checkpoint: refused, exit 1.
    const restarted = startRelay([...early.args, '--postgres-url', early.follower.url(db.url), '--checkpoint-topic', early.checkpointTopic]);
    expect(await restarted.exitCode(), restarted.dump()).toBe(1);
    const refused = restarted.logs.filter((l) => l.level === 'error');
    expect(refused, restarted.dump()).toEqual([expect.objectContaining({ msg: 'giving up', code: 'CHECKPOINT_AHEAD_OF_WAL' })]);
    expect(String(refused[0]!.err)).toContain(`the relay was to resume at ${formatLsn(checkpoint.lsn)}, confirmed on timeline 1, but this PostgreSQL (timeline 2) left timeline 1 at`);
    expect(since(refused[0]!.fix)).toBe(checkpoint.commitTimeMs! - 60_000);
    expect((await slotOn(standbyDb, early.slot))?.confirmed).toBe(atPromotion[0]!.confirmed);

    // The fix, as the runbook says: a new checkpoint topic. The relay starts at the slot and delivers the new primary's events.
    const runbook = startRelay([...early.args, '--postgres-url', early.follower.url(db.url), '--checkpoint-topic', uniqueName('ckpt')]);
    const records = await readTopic(early.topic, { expected: synced.length + behind.length + gap.length, settleMs: 0 });
    expect(new Set(records.map((r) => r.key))).toEqual(new Set([...synced, ...behind, ...gap].map((e) => e.id)));
    runbook.signal('SIGTERM');
    expect(await runbook.exitCode(), runbook.dump()).toBe(0);
    console.log(
      `delivered on the old primary to ${formatLsn(delivered)} (the standby had ${formatLsn(received)}); the new primary's WAL end ${formatLsn(walEnd)} at promotion; ` +
        `its slots confirmed at ${atPromotion.map((a) => formatLsn(a!.confirmed)).join(', ')}; all done ${((Date.now() - started) / 1000).toFixed(1)} s after the slots were created`,
    );
  });
});
