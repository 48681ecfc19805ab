import pg from 'pg';
import { freePort } from '../../stack/ports.js';
import { describe, expect, it } from 'vitest';
import { commitRecordLsn, committedIds, insertEvents, setupOutbox, slotConfirmedLsn, waitForConfirmedAll, type OutboxSetup } from '../support/outbox.js';
import { runCli, runCliJson, runCliOnTerminal, startCli } from '../support/cli.js';
import { configFifo, signalWhileReadingConfig } from '../support/config-fifo.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { readTopic, uniqueName, type ConsumedRecord } from '../support/services.js';
import { useFreshDatabase } from '../support/database.js';
import { formatLsn, parseLsn } from '../../src/lsn.js';
import type { CheckpointStatus } from '../../src/ops/checkpoint-status.js';

const TRANSACTION_HEADERS = ['outbox-lsn', 'outbox-commit-time', 'outbox-xid'];

/** A command's flags from the relay's: the same database, slot, publication, topic and brokers (republish has no --status-interval). */
function commandArgs(setup: OutboxSetup, command: string): string[] {
  const args = setup.args.slice(1);
  const i = args.indexOf('--status-interval');
  return [command, ...(command === 'republish' ? [...args.slice(0, i), ...args.slice(i + 2)] : args)];
}

/** Relays what `write` writes, waits with `delivered`, then stops the relay (the commands refuse or compete while it runs). */
async function relayAll(setup: OutboxSetup, write: () => Promise<void>, delivered: () => Promise<void>): Promise<void> {
  const relay = startRelay(setup.args);
  await relay.waitForMessage('streaming from PostgreSQL', 60_000);
  await write();
  await delivered();
  relay.signal('SIGTERM');
  expect(await relay.exited).toBe(0);
}

function withoutTransactionHeaders(record: ConsumedRecord): Record<string, string> {
  return Object.fromEntries(Object.entries(record.headers).filter(([k]) => !TRANSACTION_HEADERS.includes(k)));
}

/** The JSON log lines of a command's output. */
const jsonLines = (text: string) => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('replay and republish commands', () => {
  const db = useFreshDatabase('replaycmd');

  it('republish --since re-sends exactly the retained rows after the time, --ids just those, as the relay produced them plus the marker', async () => {
    const setup = await setupOutbox(db());
    let before: string[] = [];
    let since = '';
    await relayAll(setup, async () => {
      before = (await insertEvents(db(), 4)).map((e) => e.id);
      since = (await db().query<{ t: string }>('SELECT clock_timestamp()::text AS t')).rows[0]!.t;
      await insertEvents(db(), 3);
      await insertEvents(db(), 3, { payload: (i) => JSON.stringify({ n: i, nested: { a: [1, 2] } }) });
    }, () => waitForConfirmedAll(db(), setup.slot));
    const original = await readTopic(setup.topic, { expected: 10 });
    expect(original).toHaveLength(10);
    const byId = new Map(original.map((r) => [r.key!, r]));
    // A row the cleanup job already deleted cannot be re-sent.
    const deleted = original[5]!.key!;
    await db().query('DELETE FROM outbox WHERE id = $1', [deleted]);
    const { rows } = await db().query<{ id: string }>('SELECT id::text FROM outbox WHERE created_at >= $1 ORDER BY created_at, id', [since]);
    expect(rows).toHaveLength(5);

    const result = await runCli([...commandArgs(setup, 'republish'), '--since', since, '--batch-size', '2']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const afterSince = await readTopic(setup.topic, { expected: 15 });
    const resent = afterSince.slice(10);
    expect(resent.map((r) => r.key)).toEqual(rows.map((r) => r.id));
    for (const record of resent) {
      const relayed = byId.get(record.key!)!;
      expect(record.topic).toBe(relayed.topic);
      expect(record.value?.toString()).toBe(relayed.value?.toString());
      expect(record.headers['outbox-republished']).toBe('true');
      for (const h of TRANSACTION_HEADERS) expect(record.headers[h]).toBeUndefined();
      expect(withoutTransactionHeaders(record)).toEqual({ ...withoutTransactionHeaders(relayed), 'outbox-republished': 'true' });
    }
    const finished = result.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'republish finished');
    expect(finished).toMatchObject({ events: 5, dryRun: false });

    const ids = [before[1]!, before[3]!];
    // The deleted row's id is reported as not found, not silently passed over. --json: stdout is the summary alone.
    // One row per page: the pages after the first go through the keyset that also admits rows without a time.
    const byIds = await runCliJson<Record<string, unknown>>([...commandArgs(setup, 'republish'), '--ids', [...ids, deleted].join(','), '--batch-size', '1']);
    expect(byIds.code, byIds.stdout + byIds.stderr).toBe(0);
    expect(byIds.json).toMatchObject({ events: 2, filtered: 0, byTopic: { [setup.topic]: 2 }, notFound: [deleted], dryRun: false, interrupted: false });
    const notFound = byIds.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.level === 'warn');
    expect(notFound, byIds.stderr).toMatchObject({ notFound: [deleted] });
    const afterIds = await readTopic(setup.topic, { expected: 17 });
    expect(afterIds.slice(15).map((r) => r.key).sort()).toEqual([...ids].sort());
    expect(afterIds).toHaveLength(17);

    // --dry-run counts what --since would send and produces nothing.
    const dry = await runCli(['republish', '--postgres-url', db().url, '--topic', setup.topic, '--since', since, '--dry-run']);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/"events":5,.*"dryRun":true/);
    // In a pipe the summary is the last line, after the warning about ids found nowhere.
    // A mistyped id (not a uuid) is one not found too: before, it failed the whole run (22P02, exit 1, nothing sent).
    const dryIds = await runCli(['republish', '--postgres-url', db().url, '--topic', setup.topic, '--ids', [ids[0]!, deleted, 'not-a-uuid'].join(','), '--dry-run']);
    expect(dryIds.code, dryIds.stdout + dryIds.stderr).toBe(0);
    expect(dryIds.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).slice(-2), dryIds.stdout).toEqual([
      expect.objectContaining({ level: 'warn', notFound: [deleted, 'not-a-uuid'] }),
      expect.objectContaining({ msg: 'republish finished', events: 1, dryRun: true }),
    ]);
    // --until bounds --since (exclusive): the rows of the first transaction after `since`, not the last one's.
    const untilTime = (await db().query<{ t: string }>('SELECT created_at::text AS t FROM outbox WHERE id = $1', [rows.at(-1)!.id])).rows[0]!.t;
    const { rows: earlier } = await db().query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE created_at >= $1 AND created_at < $2', [since, untilTime]);
    expect(earlier[0]!.n).toBeGreaterThan(0);
    expect(earlier[0]!.n).toBeLessThan(rows.length);
    // On a terminal: readable lines, no JSON.
    const bounded = await runCliOnTerminal(['republish', '--postgres-url', db().url, '--topic', setup.topic, '--since', since, '--until', untilTime, '--dry-run']);
    expect(bounded.code, bounded.stdout).toBe(0);
    expect(bounded.stdout).toMatch(new RegExp(`^would re-send ${earlier[0]!.n} event\\(s\\) in \\d+\\.\\d s$`, 'm'));
    expect(bounded.stdout).toMatch(new RegExp(`^  topic ${setup.topic}\\s+${earlier[0]!.n}$`, 'm'));
    expect(bounded.stdout).toMatch(/^\d\d:\d\d:\d\d info  republish finished {2}events=/m);
    expect(bounded.stdout).not.toMatch(/^\{/m);
    const backwards = await runCli(['republish', '--postgres-url', db().url, '--since', since, '--until', '2000-01-01T00:00:00Z', '--dry-run']);
    expect(backwards.code).toBe(2);
    expect((await readTopic(setup.topic, { expected: 18, timeoutMs: 2000, settleMs: 0 })).length).toBe(17);
  });

  it("republish sends only the rows the publication's row filter lets through, as the relay does (the others count as filtered)", async () => {
    const setup = await setupOutbox(db());
    const filtered = uniqueName('pub');
    await db().query(`CREATE PUBLICATION ${filtered} FOR TABLE outbox WHERE (aggregate_type <> 'internal') WITH (publish = 'insert')`);
    const since = (await db().query<{ t: string }>('SELECT clock_timestamp()::text AS t')).rows[0]!.t;
    const kept = (await insertEvents(db(), 3)).map((e) => e.id);
    await db().query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) SELECT gen_random_uuid(), 'internal', 'a', 'Audit', '{}' FROM generate_series(1, 2)`);
    // The relay's publication (no filter) publishes all five; the filtered one three.
    const all = await runCliJson<{ events: number; filtered: number }>([...commandArgs(setup, 'republish'), '--since', since, '--dry-run']);
    expect(all.json).toMatchObject({ events: 5, filtered: 0 });
    const result = await runCliJson<{ events: number; filtered: number }>([...commandArgs(setup, 'republish'), '--publication', filtered, '--since', since]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.json).toMatchObject({ events: 3, filtered: 2 });
    const records = await readTopic(setup.topic, { expected: 3 });
    expect(records.map((r) => r.key).sort()).toEqual([...kept].sort());

    // That publication dropped (its filter with it), not yet made again: every row goes, and republish says so.
    await db().query(`DROP PUBLICATION ${filtered}`);
    const dropped = await runCliJson<{ events: number; filtered: number }>([...commandArgs(setup, 'republish'), '--publication', filtered, '--since', since, '--dry-run']);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(dropped.json).toMatchObject({ events: 5, filtered: 0 });
    const warnings = dropped.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === 'warn');
    expect(warnings.map((l) => l.msg)).toEqual([
      `publication "${filtered}" does not exist (dropped, or not the one the relay streams with: pass its --publication): republish applies no row filter to public.outbox and sends every selected row; if the dropped publication had a row filter, create it again with that filter first (outbox-relay setup --row-filter …), then republish`,
    ]);
    // The relay's own publication, which publishes the table, gets no such line.
    expect(all.stderr).not.toContain('applies no row filter');
  });

  it("republish --since without an offset is UTC, as its check and its resume times are, whatever the server's TimeZone", async () => {
    const setup = await setupOutbox(db());
    await insertEvents(db(), 2);
    const since = (await db().query<{ t: string }>(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS t`)).rows[0]!.t;
    await insertEvents(db(), 3);
    // New connections (the command's) read timestamps without an offset in New York time: 5 hours off UTC.
    await db().query(`ALTER DATABASE ${db().name} SET timezone TO 'America/New_York'`);
    const counted = await runCliJson<{ events: number }>([...commandArgs(setup, 'republish'), '--since', since, '--dry-run']);
    expect(counted.code, counted.stderr).toBe(0);
    expect(counted.json.events).toBe(3);
  });

  it('republish --since with an offset on a timestamp (without time zone) column: the offset counts, as its check reads it; records keep that column\'s time (mapping.timestamp)', async () => {
    const setup = await setupOutbox(db());
    await db().query(`ALTER TABLE outbox ADD COLUMN written_at timestamp NOT NULL DEFAULT (clock_timestamp() AT TIME ZONE 'UTC')`);
    await insertEvents(db(), 2);
    // The same instant written in UTC+02:00.
    const { rows } = await db().query<{ t: string }>(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC' + interval '2 hours', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+02:00' AS t`);
    await insertEvents(db(), 3);
    // Before: PostgreSQL dropped the offset of a timestamp parameter and counted from two hours later: 0.
    // mapping.timestamp is also the column --since matches.
    const args = [...commandArgs(setup, 'republish'), '--mapping-timestamp', 'written_at', '--since', rows[0]!.t];
    const counted = await runCliJson<{ events: number }>([...args, '--dry-run']);
    expect(counted.code, counted.stderr).toBe(0);
    expect(counted.json.events).toBe(3);
    const sent = await runCliJson<{ events: number }>([...args, '--batch-size', '2']);
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.json.events).toBe(3);
    // Before, a re-sent record had the time of the re-send.
    const written = await db().query<{ id: string; ms: string }>(`SELECT id::text, floor(extract(epoch FROM written_at AT TIME ZONE 'UTC') * 1000)::bigint::text AS ms FROM outbox ORDER BY written_at, id`);
    const records = await readTopic(setup.topic, { expected: 3 });
    expect(records.map((r) => [r.key, r.timestamp])).toEqual(written.rows.slice(2).map((r) => [r.id, Number(r.ms)]));
  });

  it('republish with no Kafka to reach at its start: exit 1 with one error line, its code and fix, nothing sent', async () => {
    const setup = await setupOutbox(db());
    await insertEvents(db(), 1);
    const failed = await runCli(['republish', '--postgres-url', db().url, '--topic', setup.topic, '--since', '2000-01-01T00:00:00Z', '--kafka-brokers', '127.0.0.1:9', '--retry-max-duration', '1s']);
    expect(failed.code, failed.stdout + failed.stderr).toBe(1);
    const errors = jsonLines(failed.stdout + failed.stderr).filter((l) => l.level === 'error');
    expect(errors, failed.stdout + failed.stderr).toEqual([expect.objectContaining({ code: 'KAFKA_UNAVAILABLE', fix: expect.any(String) as unknown })]);
    // Before, the failure came as a second kind of line: plain text on stderr.
    expect(failed.stderr).not.toContain('outbox-relay: ');
  });

  /**
   * A republish of six transactions' rows that `stop` ends once 15 are in Kafka: exit 1 with one error line
   * whose fix resumes from a later time; run again as the fix says, the two runs sent every row. Returns the line.
   */
  async function stoppedAndResumed(stop: (run: RelayProcess) => Promise<void>): Promise<Record<string, unknown>> {
    const setup = await setupOutbox(db());
    const since = (await db().query<{ t: string }>('SELECT clock_timestamp()::text AS t')).rows[0]!.t;
    // Six transactions: six created_at times, so a resume can start later than the first.
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(...(await insertEvents(db(), 10)).map((e) => e.id));
    const first = startRelay([...commandArgs(setup, 'republish'), '--since', since, '--batch-size', '5', '--rate', '5']);
    try {
      // Past the first transaction's rows: a resume at the time of the rows read last leaves those out.
      await readTopic(setup.topic, { expected: 15, timeoutMs: 30_000, settleMs: 0 });
      await stop(first);
      expect(await first.exited, first.dump()).toBe(1);
    } finally {
      await first.kill();
    }
    const errors = first.logs.filter((l) => l.level === 'error');
    expect(errors, first.dump()).toHaveLength(1);
    const resumeSince = /run the same command with --since '([^']+)' \(rows from that time on are sent again\)$/.exec(String(errors[0]!.fix))?.[1];
    expect(resumeSince, String(errors[0]!.fix)).toBeDefined();
    const sentFirst = (await readTopic(setup.topic, {})).length;
    expect(sentFirst).toBeGreaterThanOrEqual(15);
    expect(sentFirst).toBeLessThan(60);

    const rest = await runCli([...commandArgs(setup, 'republish'), '--since', resumeSince!, '--batch-size', '5']);
    expect(rest.code, rest.stdout + rest.stderr).toBe(0);
    const restEvents = Number(rest.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'republish finished')!.events);
    // It went on from where the first run stopped (not from the start), and together they sent every row.
    expect(restEvents).toBeLessThan(60);
    const records = await readTopic(setup.topic, { expected: sentFirst + restEvents });
    expect(records).toHaveLength(sentFirst + restEvents);
    expect(new Set(records.map((r) => r.key))).toEqual(new Set(ids));
    return errors[0]!;
  }

  it('republish stopped by SIGTERM exits 1 with one INTERRUPTED error line whose fix goes on from there without missing a row', async () => {
    const error = await stoppedAndResumed(async (run) => run.signal('SIGTERM'));
    expect(error).toMatchObject({ msg: 'republish interrupted', code: 'INTERRUPTED', interrupted: true });
    expect(error.fix).toBe(`run the same command with --since '${String(error.resumeSince)}' (rows from that time on are sent again)`);
    expect(Number(error.events)).toBeGreaterThanOrEqual(15);
  });

  it('republish whose PostgreSQL connection is lost mid-run (a failover, a restart) exits 1 with the connection error, and its fix goes on from there without missing a row', async () => {
    const error = await stoppedAndResumed(async () => {
      await db().query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'outbox-relay-cli'");
    });
    expect(error).toMatchObject({ msg: 'giving up', code: 'PG_CONNECT_FAILED' });
  });

  // Until now a signal before their own handlers met Node's default: exit 130 or 143 and not a line. The config
  // file is a FIFO, so each command is still in its config read, loading, when the signal arrives, every time.
  it('a signal while replay, republish or config check is still loading: replay and republish exit 1 with one INTERRUPTED error that says nothing was done or sent, config check finishes', async () => {
    const setup = await setupOutbox(db());
    await insertEvents(db(), 3);
    const whileLoading = async (args: string[], signal: NodeJS.Signals) => {
      const fifo = configFifo();
      const { child, result } = startCli([...args, '--config', fifo]);
      await signalWhileReadingConfig(fifo, () => child.kill(signal), `slot: ${setup.slot}\n`);
      return result;
    };
    const slotBefore = await slotConfirmedLsn(db(), setup.slot);

    const replay = await whileLoading([...commandArgs(setup, 'replay'), '--start-lsn', formatLsn(slotBefore)], 'SIGINT');
    expect(replay.code, replay.stdout + replay.stderr).toBe(1);
    expect(replay.stderr).toBe('outbox-relay: INTERRUPTED: replay interrupted by SIGINT: before it started\n  fix: nothing was done: run the same replay command again\n');
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(slotBefore);

    const since = '2000-01-01 00:00:00';
    const republish = await whileLoading([...commandArgs(setup, 'republish'), '--since', since], 'SIGTERM');
    expect(republish.code, republish.stdout + republish.stderr).toBe(1);
    const errors = jsonLines(republish.stdout + republish.stderr).filter((l) => l.level === 'error' || l.level === 'fatal');
    expect(errors, republish.stdout + republish.stderr).toEqual([expect.objectContaining({ msg: 'republish interrupted', code: 'INTERRUPTED', events: 0, fix: `run the same command with --since '${since}' (rows from that time on are sent again)` })]);
    expect(await readTopic(setup.topic, { expected: 0 })).toEqual([]);

    const check = await whileLoading(['config', 'check', ...commandArgs(setup, 'run').slice(1)], 'SIGTERM');
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain(setup.slot);
  });

  it('replay --start-lsn --to-lsn re-delivers exactly the events committed in the range and exits 0; refuses while the slot is active and below the slot', async () => {
    const checkpointTopic = uniqueName('checkpoints');
    const setup = await setupOutbox(db(), { extraArgs: ['--replay-window', '1GiB', '--checkpoint-topic', checkpointTopic] });
    const slotAtStart = await slotConfirmedLsn(db(), setup.slot);
    const txns: string[][] = [];
    await relayAll(setup, async () => {
      for (let t = 0; t < 4; t++) txns.push((await insertEvents(db(), 3)).map((e) => e.id));
    }, async () => void (await readTopic(setup.topic, { expected: 12, settleMs: 0 })));
    // The replay window kept the slot where it was.
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(slotAtStart);
    const original = await readTopic(setup.topic, { expected: 12 });
    expect(original.map((r) => r.key)).toEqual(txns.flat());
    const lsnOf = (id: string) => original.find((r) => r.key === id)!.headers['outbox-lsn']!;
    const from = lsnOf(txns[1]![0]!);
    const to = lsnOf(txns[2]![0]!);

    const replay = await runCliJson<Record<string, unknown>>([...commandArgs(setup, 'replay'), '--start-lsn', from, '--to-lsn', to]);
    expect(replay.code, replay.stdout + replay.stderr).toBe(0);
    const all = await readTopic(setup.topic, { expected: 18, settleMs: 1000 });
    expect(all.slice(12).map((r) => r.key)).toEqual([...txns[1]!, ...txns[2]!]);
    expect(all.slice(12).map((r) => r.headers['outbox-lsn'])).toEqual([...txns[1]!, ...txns[2]!].map(lsnOf));
    // The summary counts what Kafka acknowledged, and names the commit LSNs of the first and last transaction re-sent.
    expect(replay.json).toMatchObject({ finished: true, events: 6, skipped: 0, byTopic: { [setup.topic]: 6 }, commitLsnRange: { first: from, last: to }, startLsn: from, toLsn: to, lastCommitLsn: to });
    expect(parseLsn(replay.json.confirmedLsn as string) > parseLsn(to)).toBe(true);
    expect(replay.stderr).toContain('"msg":"replay finished"');

    // On a terminal: the summary as readable lines. From the last transaction on, up to the WAL position at start.
    const last = lsnOf(txns[3]![0]!);
    const human = await runCliOnTerminal([...commandArgs(setup, 'replay'), '--start-lsn', last]);
    expect(human.code, human.stdout).toBe(0);
    expect((await readTopic(setup.topic, { expected: 21, settleMs: 1000 })).slice(18).map((r) => r.key)).toEqual(txns[3]);
    expect(human.stdout).toMatch(/^replay finished: re-sent 3 event\(s\) in \d+\.\d s$/m);
    expect(human.stdout).toMatch(new RegExp(`^  commit LSNs re-sent\\s+${last} \\.\\. ${last}$`, 'm'));
    expect(human.stdout).toMatch(/^\d\d:\d\d:\d\d info  starting replay/m);
    expect(human.stdout).not.toMatch(/^\{/m);

    // status shows the checkpoint and the WAL between the slot and it, which the window keeps.
    const brokers = setup.args[setup.args.indexOf('--kafka-brokers') + 1]!;
    const status = await runCliJson<{ checkpoint: CheckpointStatus }>(['status', '--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication, '--kafka-brokers', brokers, '--checkpoint-topic', checkpointTopic, '--relay-url', `http://127.0.0.1:${await freePort()}`]);
    // No relay runs during the replay test: status says so with exit 5, and still shows the rest.
    expect(status.code, status.stderr).toBe(5);
    const checkpointLsn = parseLsn(status.json.checkpoint.checkpoint!.lsn!);
    expect(checkpointLsn > parseLsn(to)).toBe(true);
    expect(status.json.checkpoint.checkpoint!.commitTime).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(status.json.checkpoint.replayWindow).toEqual({ oldestReplayableLsn: formatLsn(slotAtStart), checkpointLsn: formatLsn(checkpointLsn), retainedBytes: Number(checkpointLsn - slotAtStart) });

    // Below what the slot retains: the documented error, naming the oldest replayable LSN and republish.
    const below = await runCli([...commandArgs(setup, 'replay'), '--start-lsn', formatLsn(slotAtStart - 1n)]);
    expect(below.code).toBe(1);
    // One error line (the relay's, JSON on stdout in a pipe), not a second one on stderr.
    const belowErrors = jsonLines(below.stdout).filter((l) => l.level === 'error');
    expect(belowErrors, below.stdout).toEqual([expect.objectContaining({ code: 'REPLAY_OUT_OF_WINDOW' })]);
    expect(String(belowErrors[0]!.err)).toContain(`can only stream from ${formatLsn(slotAtStart)} on (oldest replayable LSN`);
    expect(String(belowErrors[0]!.fix)).toContain('outbox-relay republish --since');
    expect(below.stderr).toBe('');

    // A running relay holds the slot: refused, nothing re-delivered.
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL', 60_000);
    const busy = await runCli([...commandArgs(setup, 'replay'), '--start-lsn', from]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain('is in use');
    expect((await readTopic(setup.topic, { expected: 22, timeoutMs: 2000, settleMs: 0 })).length).toBe(21);
  });

  // A replay confirms as it goes: from beyond the delivered position it would confirm the events in between unsent.
  // The replay window keeps the slot behind the checkpoint: "delivered" is the checkpoint there, not the slot.
  it('replay from beyond what was delivered (an undelivered commit, past the checkpoint): exit 1, one OPERATION_REFUSED line with the fix, slot unchanged; run then delivers every row', async () => {
    const checkpointTopic = uniqueName('checkpoints');
    const setup = await setupOutbox(db(), { extraArgs: ['--replay-window', '1GiB', '--checkpoint-topic', checkpointTopic] });
    const slotAtStart = await slotConfirmedLsn(db(), setup.slot);
    await relayAll(setup, async () => void (await insertEvents(db(), 3)), async () => void (await readTopic(setup.topic, { expected: 3, settleMs: 0 })));
    const delivered = (await readTopic(setup.topic, { expected: 3 })).at(-1)!.headers['outbox-lsn']!;
    const undelivered = await insertEvents(db(), 2);
    const { rows } = await db().query<{ xid: string }>('SELECT xmin::text AS xid FROM outbox WHERE id = $1', [undelivered[0]!.id]);
    const undeliveredCommit = await commitRecordLsn(db(), rows[0]!.xid, parseLsn(delivered));
    const slotBefore = await slotConfirmedLsn(db(), setup.slot);
    expect(slotBefore).toBe(slotAtStart);

    const refused = await runCli([...commandArgs(setup, 'replay'), '--start-lsn', formatLsn(undeliveredCommit)]);
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    const errors = jsonLines(refused.stdout + refused.stderr).filter((l) => l.level === 'error' || l.level === 'fatal');
    expect(errors, refused.stdout + refused.stderr).toEqual([expect.objectContaining({ msg: 'giving up', code: 'OPERATION_REFUSED' })]);
    expect(refused.stderr).toBe('');
    // Delivered up to the checkpoint (past the last delivered commit), not the slot the window holds back.
    const deliveredUpTo = /has delivered up to (\S+), and a replay from beyond it would confirm the events committed in between without ever sending them/.exec(String(errors[0]!.err))?.[1];
    expect(deliveredUpTo, String(errors[0]!.err)).toBeDefined();
    expect(parseLsn(deliveredUpTo!) > parseLsn(delivered)).toBe(true);
    expect(errors[0]!.fix).toBe(`replay from ${deliveredUpTo} or earlier; to skip undelivered events on purpose, outbox-relay slot advance previews what it skips (a poison event: docs/operations.md)`);
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(slotBefore);
    // Nothing was sent: the topic still holds the first three.
    expect(await readTopic(setup.topic, { expected: 4, timeoutMs: 2000, settleMs: 0 })).toHaveLength(3);

    await relayAll(setup, async () => undefined, async () => void (await readTopic(setup.topic, { expected: 5, settleMs: 0 })));
    expect(new Set((await readTopic(setup.topic, { expected: 5 })).map((r) => r.key))).toEqual(new Set(await committedIds(db())));
  });

  it('a bounded replay ends at the first transaction past its end without waiting for that transaction\'s commit', async () => {
    const setup = await setupOutbox(db());
    const start = await slotConfirmedLsn(db(), setup.slot);
    // B, past the end, is open while A commits and commits right after it: PostgreSQL sends B's first rows just
    // behind A's commit, and B's commit only after ~20 MB of rows.
    const b = new pg.Client({ connectionString: db().url });
    await b.connect();
    let inRange: string[];
    let end: string;
    try {
      await b.query('BEGIN');
      await insertEvents({ query: (text: string, values?: unknown[]) => b.query(text, values) } as never, 20_000, { payload: (i) => JSON.stringify({ n: i, pad: 'x'.repeat(1000) }) });
      inRange = (await insertEvents(db(), 2)).map((e) => e.id);
      // B's commit record will start here at the earliest: the bound ends one byte before.
      end = formatLsn(parseLsn((await db().query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn) - 1n);
      await b.query('COMMIT');
    } finally {
      await b.end();
    }
    // A grace period longer than the test: a replay that read B to its commit (with reading paused) would not end in time.
    const replay = await runCliJson<Record<string, unknown>>([...commandArgs(setup, 'replay'), '--start-lsn', formatLsn(start), '--to-lsn', end, '--shutdown-grace', '10m']);
    expect(replay.code, replay.stdout + replay.stderr).toBe(0);
    expect(replay.json).toMatchObject({ finished: true, events: 2 });
    expect(replay.stderr).not.toContain('grace period over');
    expect((await readTopic(setup.topic, { expected: 2, settleMs: 1000 })).map((r) => r.key)).toEqual(inRange);
  });
});
