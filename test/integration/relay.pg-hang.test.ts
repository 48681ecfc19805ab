import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { formatLsn } from '../../src/lsn.js';
import { sleep } from '../../src/retry.js';
import { KafkaBroker, OTHER_POSTGRES_VERSIONS, PostgresServer, ensurePostgresBinaries, freeze, isAlive, repoRoot, startStandby, waitUntil } from '../../stack/index.js';
import { runCli } from '../support/cli.js';
import { committedIds, committedIdsWithEndLsn, compareDelivery, currentWalLsn, insertEvents, slotActivePid, slotConfirmedLsn, setupOutbox, waitForConfirmedAll } from '../support/outbox.js';
import { killAllRelays, startRelay, type RelayProcess } from '../support/relay-process.js';
import { createDatabase, createTopic, readTopic, stack, uniqueName, type TestDatabase } from '../support/services.js';
import { httpArgs, metricValue, scrape } from '../support/ops-http.js';

/** Every exit other than 0 comes with exactly one error line that has a code and a fix: that line. */
async function exitReason(relay: RelayProcess, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  expect(await relay.exitCode(timeoutMs), relay.dump()).toBe(1);
  const errors = relay.logs.filter((l) => l.level === 'error' || l.level === 'fatal');
  expect(errors, relay.dump()).toHaveLength(1);
  expect(String(errors[0]!.fix ?? ''), relay.dump()).not.toBe('');
  return errors[0]!;
}

// These tests freeze PostgreSQL's and Kafka's processes, so they run against a PostgreSQL and a broker of their own.
// wal_sender_timeout 3 s as in relay.outage: the relay waits at least that long, so a receive timeout of 4 s is used
// as given.
describe.skipIf(!stack().owned.postgres || !stack().owned.kafka)('relay: a PostgreSQL or broker that hangs with the connection open', () => {
  const postgres = new PostgresServer({ name: uniqueName('pghang'), settings: { wal_sender_timeout: '3s' } });
  const kafka = new KafkaBroker({ name: uniqueName('pghang') });
  let db: TestDatabase;
  /** Processes this file stopped: thawed after a test that failed while they were. */
  const frozen = new Set<number>();

  /**
   * Returns once every thread of `pid` has stopped (a broker still running for a moment answered the request the test
   * meant to hang, exit-while-blocked.ts's 'metadata answered'); the returned function thaws it (SIGCONT).
   */
  async function frozenUntilThawed(pid: number): Promise<() => void> {
    await freeze(pid);
    frozen.add(pid);
    return () => {
      frozen.delete(pid);
      process.kill(pid, 'SIGCONT');
    };
  }

  beforeAll(async () => {
    await Promise.all([postgres.start(), kafka.start()]);
  });
  afterEach(async () => {
    for (const pid of frozen) if (isAlive(pid)) process.kill(pid, 'SIGCONT');
    frozen.clear();
    await killAllRelays();
    await db?.close();
    // Closed once: a test without a database of its own (the exit one) leaves nothing to close.
    db = undefined as unknown as TestDatabase;
  });
  afterAll(async () => {
    await Promise.all([postgres.stop(), kafka.stop()]);
    postgres.destroy();
    kafka.destroy();
  });

  it('a stopped walsender: after postgres.receiveTimeout the relay drops the connection (one warn line), and once the walsender lets go of the slot it streams again, nothing lost', async () => {
    db = await createDatabase('walsender', postgres.url());
    const setup = await setupOutbox(db, { brokers: kafka.brokers, extraArgs: ['--postgres-receive-timeout', '4s', '--retry-initial-delay', '200ms', '--retry-max-delay', '1s'] });
    // Debug: the attempts after the outage's warn line log there.
    const relay = startRelay([...setup.args, '--log-level', 'debug']);
    await relay.waitForMessage('streaming from PostgreSQL');
    await insertEvents(db, 5);
    await waitForConfirmedAll(db, setup.slot);
    const walsender = (await slotActivePid(db, setup.slot))!;
    expect(walsender).toBeGreaterThan(0);
    const thaw = await frozenUntilThawed(walsender);
    try {
      // Committed while the walsender hangs: they must arrive once a new one streams.
      await insertEvents(db, 5);
      const lost = await relay.waitForMessage('replication connection lost: reconnecting', 30_000);
      expect(JSON.stringify(lost), relay.dump()).toContain('PostgreSQL sent nothing on the replication connection for 4 s');
      expect(lost.code, relay.dump()).toBe('PG_STREAM_FAILED');
      // The stopped walsender still holds the slot: the attempts say so and go on as the same outage.
      await relay.waitForLog((l) => JSON.stringify(l).includes(`replication slot still held by this relay's previous connection (walsender pid ${walsender})`), 30_000, 'an attempt that finds the slot held by the stopped walsender');
    } finally {
      thaw();
    }
    await relay.waitForMessage('replication connection back: streaming resumed', 60_000);
    await insertEvents(db, 5);
    await waitForConfirmedAll(db, setup.slot);
    const committed = await committedIds(db);
    // No settling: what is missing is all this read checks, and records after the end offsets cannot change that.
    const records = await readTopic(setup.topic, { expected: committed.length, brokers: kafka.brokers, timeoutMs: 60_000, settleMs: 0 });
    expect(compareDelivery(committed, records.map((r) => r.key)).missing).toEqual([]);
    expect(relay.logs.filter((l) => l.level === 'warn').map((l) => l.msg), relay.dump()).toEqual(['replication connection lost: reconnecting']);
    expect(relay.logs.filter((l) => l.level === 'error'), relay.dump()).toEqual([]);
    relay.signal('SIGTERM');
    expect(await relay.exitCode(), relay.dump()).toBe(0);
  });

  // The stop's close of the replication connection waited 5 s for the walsender to end the command: with a grace
  // of 0 (or a drain that took the grace) that met the watchdog at grace + 5 s, exit 1 (SHUTDOWN_TIMEOUT) for a stop
  // that had confirmed everything Kafka acknowledged.
  it('SIGTERM with the walsender stopped and a grace of 0: exit 0, no error line; once it is thawed the next relay delivers what it had not read', async () => {
    db = await createDatabase('stopfrozen', postgres.url());
    const setup = await setupOutbox(db, { brokers: kafka.brokers, extraArgs: ['--shutdown-grace', '0s'] });
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    await insertEvents(db, 5);
    await waitForConfirmedAll(db, setup.slot);
    const walsender = (await slotActivePid(db, setup.slot))!;
    const thaw = await frozenUntilThawed(walsender);
    try {
      await insertEvents(db, 5);
      const signalledAt = Date.now();
      relay.signal('SIGTERM');
      expect(await relay.exitCode(), relay.dump()).toBe(0);
      console.log(`walsender stopped, grace 0: exit 0 ${((Date.now() - signalledAt) / 1000).toFixed(1)} s after SIGTERM`);
    } finally {
      thaw();
    }
    expect(relay.logs.filter((l) => l.level === 'error'), relay.dump()).toEqual([]);
    expect(relay.logs.at(-1)?.msg, relay.dump()).toBe('stopped');
    // The thawed walsender finds its connection gone and ends, which frees the slot.
    await waitUntil('the stopped walsender to end', () => !isAlive(walsender), 30_000, 100);
    const next = startRelay(setup.args);
    await next.waitForMessage('streaming from PostgreSQL');
    await waitForConfirmedAll(db, setup.slot);
    const committed = await committedIds(db);
    const records = await readTopic(setup.topic, { expected: committed.length, brokers: kafka.brokers, timeoutMs: 60_000, settleMs: 0 });
    expect(compareDelivery(committed, records.map((r) => r.key)).missing).toEqual([]);
    next.signal('SIGTERM');
    expect(await next.exitCode(), next.dump()).toBe(0);
  });

  it('an exit that must not wait (a second signal, the shutdown watchdog) ends the process while a librdkafka call holds the thread pool on a frozen broker, after its error line was written and the exit listeners ran', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/exit-while-blocked.ts', kafka.brokers[0]!], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, UV_THREADPOOL_SIZE: '1' } });
    const out: string[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitUntil('the child connected to the broker', () => out.join('').includes('connected'), 60_000, 50);
    const thaw = await frozenUntilThawed(kafka.pid()!);
    try {
      child.stdin.write('go\n');
      // Before: process.exit(1) waited for the getMetadata's 120 s timeout (measured with 30 s: 29.5 s).
      const code = await Promise.race([exited, sleep(20_000).then(() => 'still running' as const)]);
      expect(code, out.join('')).toBe(1);
    } finally {
      child.kill('SIGKILL');
      thaw();
    }
    expect(out.join('')).toContain('exit listener ran, code 1');
    // Before: the logger wrote through the thread pool, and its line, queued behind the getMetadata, was lost.
    expect(out.join('')).toMatch(/"level":"error".*"code":"SHUTDOWN_FORCED".*"msg":"second signal: exiting now"/);
    expect(out.join('')).not.toContain('metadata answered');
  });

  it('a second SIGTERM while the drain waits for a frozen broker: exit 1 at once, one SHUTDOWN_FORCED line with its fix, the slot not confirmed past what Kafka acknowledged', async () => {
    db = await createDatabase('forced', postgres.url());
    const setup = await setupOutbox(db, { brokers: kafka.brokers, extraArgs: ['--shutdown-grace', '60s'] });
    const from = await currentWalLsn(db);
    const http = await httpArgs();
    const relay = startRelay([...setup.args, ...http.args]);
    await relay.waitForMessage('streaming from PostgreSQL');
    const acknowledged = await insertEvents(db, 5);
    await waitForConfirmedAll(db, setup.slot);
    const thaw = await frozenUntilThawed(kafka.pid()!);
    let confirmed: bigint;
    try {
      await insertEvents(db, 5);
      // Until the relay has read them and handed them to the frozen broker (a fixed second was too short with the
      // cores busy: 1 of 15 repetitions beside two busy loops signalled before the relay had read them).
      await waitUntil('the 5 events in flight', async () => metricValue(await scrape(http.base), 'outbox_relay_in_flight_events') === 5, 30_000, 100);
      relay.signal('SIGTERM');
      const stopping = await relay.waitForMessage('stopping: draining in-flight events', 30_000);
      expect(stopping.inFlight, relay.dump()).toBe(5);
      relay.signal('SIGTERM');
      // At once: the grace (60 s) and its watchdog are far away.
      const reason = await exitReason(relay, 20_000);
      expect(reason, relay.dump()).toMatchObject({ code: 'SHUTDOWN_FORCED', msg: 'second signal: exiting now', signal: 'SIGTERM' });
      console.log(`second SIGTERM with a frozen broker: fix "${String(reason.fix)}"`);
      confirmed = await slotConfirmedLsn(db, setup.slot);
    } finally {
      thaw();
    }
    // Every event of a transaction the slot confirmed is in the topic; the second five, in flight, are not confirmed.
    const delivered = new Set((await readTopic(setup.topic, { brokers: kafka.brokers, timeoutMs: 60_000, settleMs: 0 })).map((r) => r.key));
    const commits = await committedIdsWithEndLsn(db, from);
    const confirmedIds = commits.filter((c) => c.endLsn <= confirmed).map((c) => c.id);
    console.log(`SHUTDOWN_FORCED: slot confirmed at ${formatLsn(confirmed)}, ${confirmedIds.length} of ${commits.length} events below it, ${delivered.size} in the topic`);
    // Exactly the five Kafka acknowledged: the five sent to the frozen broker may reach the topic once it thaws,
    // but were never acknowledged to the relay, so confirming them would break the rule however the topic ends up.
    expect([...confirmedIds].sort()).toEqual(acknowledged.map((e) => e.id).sort());
    expect(confirmedIds.filter((id) => !delivered.has(id))).toEqual([]);
  });
});

/** The standby's database: createDatabase makes it on the primary, which the standby then copies. */
function openDatabase(url: string): TestDatabase {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  return { name: new URL(url).pathname.slice(1), url, query: (text, values) => pool.query(text, values), close: () => pool.end() };
}

// docs/operations.md: a relay whose postgres.url reaches a standby retries (PG_STREAM_FAILED, "is a standby") until
// retry.maxDuration, then exits with RETRIES_EXHAUSTED; a standby promoted within that time, with the slot there, is
// streamed from. 15 and 16 (where a standby accepts a logical slot itself). The shared broker: nothing here stops it.
// The tests run in order on one standby, which the second promotes.
describe.skipIf(!stack().owned.postgres).each([15, 16] as const)('relay: postgres.url reaches a standby of PostgreSQL %i', (major) => {
  const primary = new PostgresServer({ name: uniqueName(`hangprimary${major}`), ...(major === 15 ? {} : { binDir: ensurePostgresBinaries(OTHER_POSTGRES_VERSIONS[major]) }) });
  let standby: PostgresServer;
  let standbyDb: TestDatabase;
  const [slot, publication, topic] = [uniqueName('slot'), uniqueName('pub'), uniqueName('topic')];
  const relayArgs = (slotName: string) => ['run', '--postgres-url', standbyDb.url, '--slot', slotName, '--publication', publication, '--topic', topic, '--kafka-brokers', stack().brokers.join(','), '--status-interval', '200ms', '--retry-initial-delay', '200ms', '--retry-max-delay', '500ms'];

  beforeAll(async () => {
    await primary.start();
    const primaryDb = await createDatabase('standby', primary.url());
    // The publication is in the catalog, which the standby copies; the slot is not (a slot is the primary's own).
    await primaryDb.query(`CREATE PUBLICATION ${publication} FOR TABLE outbox WITH (publish = 'insert')`);
    await primaryDb.close();
    await createTopic(topic);
    standby = await startStandby(primary, uniqueName(`hangstandby${major}`));
    standbyDb = openDatabase(standby.url(primaryDb.name));
  }, 300_000);
  afterEach(async () => {
    await killAllRelays();
  });
  afterAll(async () => {
    await standbyDb?.close();
    for (const server of [standby, primary]) {
      await server?.stop();
      server?.destroy();
    }
  });

  it('retries as an outage and, after retry.maxDuration, exits 1 with RETRIES_EXHAUSTED and a fix naming the primary', async () => {
    expect((await standbyDb.query('SELECT pg_is_in_recovery() AS r')).rows).toEqual([{ r: true }]);
    const relay = startRelay([...relayArgs(slot), '--retry-max-duration', '3s']);
    const reason = await exitReason(relay);
    console.log(`PostgreSQL ${major} standby, retry.maxDuration 3 s: ${JSON.stringify({ code: reason.code, err: reason.err, fix: reason.fix })}`);
    expect(reason).toMatchObject({ code: 'RETRIES_EXHAUSTED', msg: 'giving up', err: expect.stringContaining('is a standby (in recovery), not the primary'), fix: expect.stringContaining('point --postgres-url at the primary') });
    expect(relay.logs.filter((l) => l.level === 'warn'), relay.dump()).toMatchObject([{ msg: 'replication connection lost: reconnecting', code: 'PG_STREAM_FAILED', err: expect.stringContaining('is a standby'), fix: expect.stringContaining('point --postgres-url at the primary') }]);
  });

  it('promoted while relays retry: one whose slot the new primary lacks exits 1 with PG_SLOT_MISSING and the setup fix; one whose slot setup creates there streams and delivers', async () => {
    const missingSlot = uniqueName('slot');
    const withoutSlot = startRelay([...relayArgs(missingSlot), '--retry-max-duration', '60s']);
    const withSlot = startRelay([...relayArgs(slot), '--retry-max-duration', '60s']);
    await Promise.all([withoutSlot, withSlot].map((r) => r.waitForMessage('replication connection lost: reconnecting', 30_000)));
    // The operator's order: promote, then setup on the new primary. Frozen meanwhile, this relay's next attempt
    // comes after both, as it would for a relay whose URL follows the primary only once it is ready. Every thread
    // stopped first: kill() returns before, and an attempt of a relay still running between the two found no slot.
    await freeze(withSlot.pid);
    let reason: Record<string, unknown>;
    try {
      expect((await standbyDb.query('SELECT pg_promote() AS ok')).rows).toEqual([{ ok: true }]);
      reason = await exitReason(withoutSlot);
      const setup = await runCli(['setup', '--postgres-url', standbyDb.url, '--slot', slot, '--publication', publication]);
      expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    } finally {
      process.kill(withSlot.pid, 'SIGCONT');
    }
    console.log(`PostgreSQL ${major} promoted, no slot there: ${JSON.stringify({ code: reason.code, err: reason.err, fix: reason.fix })}`);
    expect(reason).toMatchObject({ code: 'PG_SLOT_MISSING', fix: expect.stringContaining('outbox-relay setup') });
    await withSlot.waitForMessage('replication connection back: streaming resumed', 60_000);
    const events = await insertEvents(standbyDb, 5);
    const records = await readTopic(topic, { expected: events.length, settleMs: 500 });
    expect(records.map((r) => r.key)).toEqual(events.map((e) => e.id));
    expect(withSlot.logs.filter((l) => l.level === 'error'), withSlot.dump()).toEqual([]);
    withSlot.signal('SIGTERM');
    expect(await withSlot.exitCode(), withSlot.dump()).toBe(0);
  });
});
