import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from '../../src/lsn.js';
import { SLOT_LOCK_CLASS, slotLockKey } from '../../src/source/slot-lock.js';
import { freePort } from '../../stack/ports.js';
import { waitUntil } from '../../stack/index.js';
import { runCli, runCliJson, startCli } from '../support/cli.js';
import { useDatabase, useDatabaseOn } from '../support/database.js';
import { currentWalLsn, insertEvents, setupOutbox, slotConfirmedLsn } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { stack, uniqueName } from '../support/services.js';

interface SlotJson {
  name: string;
  slotType: string;
  plugin: string;
  database: string;
  active: boolean;
  activePid: number | null;
  confirmedFlushLsn: string;
  restartLsn: string;
  walStatus: string;
  safeWalSize: number | null;
  lagBytes: number;
}

describe('cli: outbox-relay slot', () => {
  const db = useDatabase('clislot');

  const flags = (slot: string, publication = 'outbox_relay') => ['--postgres-url', db().url, '--slot', slot, '--publication', publication];
  const slotExists = async (slot: string) => (await db().query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).rowCount === 1;

  /**
   * `work` while another session holds a transaction open with an xid (a new slot waits for it), with a new
   * publication to create the slot for; the transaction commits after `work`.
   */
  async function withOpenTransaction(work: (slot: string, publication: string) => Promise<void>): Promise<{ slot: string; publication: string }> {
    const names = { slot: uniqueName('slot'), publication: uniqueName('pub') };
    await db().query(`CREATE PUBLICATION ${names.publication} FOR TABLE outbox WITH (publish = 'insert')`);
    const open = new pg.Client({ connectionString: db().url });
    await open.connect();
    try {
      await open.query('BEGIN');
      await open.query('SELECT txid_current()');
      await work(names.slot, names.publication);
    } finally {
      await open.query('COMMIT');
      await open.end();
    }
    return names;
  }

  it('create makes a pgoutput slot after its publication (refused before it); again: "already exists"; list and status show it, with --json fields and the lag', async () => {
    const slot = uniqueName('slot');
    const publication = uniqueName('pub');
    // A slot created before its publication could not stream the changes written in between.
    const early = await runCliJson<{ error: { code: string; fix: string } }>(['slot', 'create', ...flags(slot, publication)]);
    expect(early.code).toBe(1);
    expect(early.json.error.code).toBe('PG_PUBLICATION_MISSING');
    expect(early.json.error.fix).toContain('outbox-relay publication create');
    expect(await slotExists(slot)).toBe(false);
    await db().query(`CREATE PUBLICATION ${publication} FOR TABLE outbox WITH (publish = 'insert')`);

    const created = await runCli(['slot', 'create', ...flags(slot, publication)]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(new RegExp(`slot "${slot}": created at [0-9A-F]+/[0-9A-F]+`));
    const { rows } = await db().query<{ plugin: string; slot_type: string; database: string }>('SELECT plugin, slot_type, database FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    expect(rows).toEqual([{ plugin: 'pgoutput', slot_type: 'logical', database: db().name }]);
    const again = await runCli(['slot', 'create', ...flags(slot, publication)]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`slot "${slot}": already exists`);

    await insertEvents(db(), 3);
    const status = await runCliJson<SlotJson>(['slot', 'status', ...flags(slot)]);
    expect(status.code, status.stderr).toBe(0);
    const confirmed = await slotConfirmedLsn(db(), slot);
    expect(status.json).toMatchObject({ name: slot, slotType: 'logical', plugin: 'pgoutput', database: db().name, active: false, activePid: null, walStatus: 'reserved', safeWalSize: null });
    expect(parseLsn(status.json.confirmedFlushLsn)).toBe(confirmed);
    expect(parseLsn(status.json.restartLsn)).toBeLessThanOrEqual(confirmed);
    // The inserts after the slot was created are WAL it has not confirmed: the lag covers at least them.
    expect(status.json.lagBytes).toBeGreaterThan(0);
    expect(BigInt(status.json.lagBytes)).toBeLessThanOrEqual((await currentWalLsn(db())) - confirmed);

    const nope = uniqueName('nope');
    const [text, list, listText, missing] = await Promise.all([
      runCli(['slot', 'status', ...flags(slot)]),
      runCliJson<SlotJson[]>(['slot', 'list', ...flags(slot)]),
      runCli(['slot', 'list', ...flags(slot)]),
      runCliJson<{ error: { code: string; fix: string } }>(['slot', 'status', ...flags(nope)]),
    ]);
    expect(text.stdout).toMatch(/^slot {17}slot_[0-9a-f]+$/m);
    expect(text.stdout).toMatch(/^confirmed_flush_lsn {2}[0-9A-F]+\/[0-9A-F]+$/m);
    // WAL is server-wide: other test files write beside this one, so the lag may be any size.
    expect(text.stdout).toMatch(/^lag {18}(\d+ bytes|[\d.]+ [KMGT]iB \(\d+ bytes\))$/m);
    expect(list.code).toBe(0);
    expect(list.json.find((s) => s.name === slot)).toMatchObject({ plugin: 'pgoutput', active: false });
    expect(listText.stdout).toMatch(/^SLOT\s+TYPE\s+PLUGIN\s+DATABASE\s+ACTIVE\s+CONFIRMED\s+WAL_STATUS\s+LAG$/m);
    expect(listText.stdout).toContain(slot);
    expect(missing.code).toBe(1);
    expect(missing.json.error.code).toBe('PG_SLOT_MISSING');
    // The relay's names, as this command's settings give them: pasted in another shell, it makes this slot.
    expect(missing.json.error.fix).toContain(`outbox-relay slot create --slot ${nope} --publication outbox_relay `);
  });

  it('a command whose connection ends under it (its backend terminated, as by a restart or failover): exit 1, PG_CONNECT_FAILED saying so, not a refusal with an unrelated fix', async () => {
    await withOpenTransaction(async (slot, publication) => {
      // `slot create` waits for the open transaction: its backend is there to terminate.
      const waiting = runCliJson<{ error: { code: string; message: string; fix: string } }>(['slot', 'create', ...flags(slot, publication)]);
      await waitUntil('the command waits', async () => {
        const { rows } = await db().query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = 'outbox-relay-cli' AND query LIKE '%pg_create_logical_replication_slot%' AND datname = current_database()");
        if (rows[0]) await db().query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
        return rows.length > 0;
      }, 30_000, 100);
      const ended = await waiting;
      expect(ended.code).toBe(1);
      // Before: PG_QUERY_FAILED "PostgreSQL refused the operation (SQLSTATE 57P01)", fix: run setup --dry-run.
      expect(ended.json.error).toMatchObject({ code: 'PG_CONNECT_FAILED', message: expect.stringContaining('lost the connection to PostgreSQL during the command') as unknown, fix: expect.stringContaining('run the command again') as unknown });
    });
  });

  it('create waits for transactions open when it was asked for, bounded by --postgres-statement-timeout: exit 1 with the fix, no slot', async () => {
    const { slot, publication } = await withOpenTransaction(async (slot, publication) => {
      const waited = await runCliJson<{ error: { code: string; message: string; fix: string } }>(['slot', 'create', ...flags(slot, publication), '--postgres-statement-timeout', '1s']);
      expect(waited.code).toBe(1);
      expect(waited.json.error).toMatchObject({ code: 'PG_QUERY_FAILED', message: expect.stringContaining('SQLSTATE 57014') as unknown, fix: expect.stringContaining('postgres.statementTimeout') as unknown });
      expect(await slotExists(slot)).toBe(false);
    });
    expect((await runCli(['slot', 'create', ...flags(slot, publication), '--postgres-statement-timeout', '1s'])).code).toBe(0);
    await db().query('SELECT pg_drop_replication_slot($1)', [slot]);
  });

  // With Node's default the command ended at once, and PostgreSQL, which notices a closed connection only when its
  // statement ends, created the slot once the open transaction committed: a slot the operator believed abandoned.
  it('create interrupted by SIGINT while it waits for an open transaction: exit 1 with one INTERRUPTED line, and no slot once that transaction ends', async () => {
    // This slot's creation only: other files' slot creations on the shared server wait for the open transaction too.
    const creating = async (slot: string) =>
      (await db().query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_create_logical_replication_slot(%' AND query LIKE $1 AND state = 'active'", [`%'${slot}'%`])).rows[0]!.n;
    const { slot } = await withOpenTransaction(async (slot, publication) => {
      const { child, result } = startCli(['slot', 'create', ...flags(slot, publication)]);
      await waitUntil('slot create waiting for the open transaction', async () => (await creating(slot)) === 1, 30_000, 50);
      child.kill('SIGINT');
      const interrupted = await result;
      expect(interrupted.code, interrupted.stderr).toBe(1);
      expect(interrupted.stderr.split('\n').filter((l) => l.startsWith('outbox-relay: '))).toEqual(['outbox-relay: INTERRUPTED: slot create interrupted by SIGINT: PostgreSQL cancelled the statement under way']);
      expect(interrupted.stderr).toContain('fix: statements before it stay done, the cancelled one took no effect');
    });
    // A statement the signal did not stop would create the slot now.
    await waitUntil('no slot creation under way', async () => (await creating(slot)) === 0, 30_000, 50);
    expect(await slotExists(slot)).toBe(false);
  });

  it('advance skips only with --yes-skip-events (else exit 6 saying how much), never backwards nor past the WAL end', async () => {
    const slot = uniqueName('slot');
    const publication = uniqueName('pub');
    await db().query(`CREATE PUBLICATION ${publication} FOR TABLE outbox WITH (publish = 'insert')`);
    expect((await runCli(['slot', 'create', ...flags(slot, publication)])).code).toBe(0);
    const from = await slotConfirmedLsn(db(), slot);
    await insertEvents(db(), 3);
    await insertEvents(db(), 2);
    // Logical-message events: one relayed with --messages-prefixes outbox; another prefix, and a
    // non-transactional message (a heartbeat), are not events.
    await db().query(`SELECT pg_logical_emit_message(true, 'outbox', '{"id":"m1"}'), pg_logical_emit_message(true, 'other', 'x')`);
    await db().query(`SELECT pg_logical_emit_message(false, 'outbox', '')`);
    const to = await currentWalLsn(db());

    // Refusals, none of which may move the slot. Not `beyond` beside the previews: counting the skipped events
    // holds the slot for a moment, and an advance meanwhile is refused as "in use" (so the previews run in turn).
    const [unconfirmed, notAnLsn] = await Promise.all([
      runCli(['slot', 'advance', formatLsn(to), ...flags(slot, publication)]),
      runCli(['slot', 'advance', 'zz', '--yes-skip-events', ...flags(slot, publication)]),
    ]);
    const withMessages = await runCli(['slot', 'advance', formatLsn(to), '--messages-prefixes', 'outbox', ...flags(slot, publication)]);
    expect(withMessages.code).toBe(6);
    expect(withMessages.stderr).toContain(`skips ${to - from} bytes of WAL, 3 transaction(s) with 6 outbox event(s) in it`);
    // With --json the preview's figures are fields of the error, not only words of its message.
    const previewJson = await runCliJson<{ error: { code: string; details: Record<string, unknown> } }>(['slot', 'advance', formatLsn(to), '--json', ...flags(slot, publication)]);
    expect(previewJson.code).toBe(6);
    expect(previewJson.json.error).toMatchObject({ code: 'CONFIRMATION_REQUIRED', details: { from: formatLsn(from), to: formatLsn(to), walBytes: Number(to - from), transactions: 2, events: 5 } });
    // 4 GiB past the WAL end: the suite's other files write WAL on the shared server meanwhile (16 MiB was overtaken once in relay.start-position.test.ts).
    const beyond = await runCli(['slot', 'advance', formatLsn(to + 0x100000000n), '--yes-skip-events', ...flags(slot, publication)]);
    // A preview is neither a failure nor a usage error: its own code.
    expect(unconfirmed.code).toBe(6);
    expect(unconfirmed.stderr).toContain(`skips ${to - from} bytes of WAL, 2 transaction(s) with 5 outbox event(s) in it`);
    expect(unconfirmed.stderr).toContain('--yes-skip-events');
    expect(beyond.code).toBe(2);
    expect(beyond.stderr).toContain('beyond the current WAL position');
    expect(notAnLsn.code).toBe(2);
    expect(await slotConfirmedLsn(db(), slot)).toBe(from);

    const advanced = await runCli(['slot', 'advance', formatLsn(to), '--yes-skip-events', ...flags(slot, publication)]);
    expect(advanced.code, advanced.stderr).toBe(0);
    expect(advanced.stdout).toContain(`confirmed_flush_lsn is now ${formatLsn(to)}`);
    expect(await slotConfirmedLsn(db(), slot)).toBe(to);
    // The skipped events are really gone from the stream.
    const { rows } = await db().query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)`, [slot, publication]);
    expect(rows[0]?.n).toBe(0);

    const backwards = await runCli(['slot', 'advance', formatLsn(from), '--yes-skip-events', ...flags(slot, publication)]);
    expect(backwards.code).toBe(2);
    expect(backwards.stderr).toContain('never moves backwards');
    expect(await slotConfirmedLsn(db(), slot)).toBe(to);
  });

  it('drop refuses while a relay streams from the slot; --force terminates its connection and drops it', async () => {
    const setup = await setupOutbox(db());
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    const status = await runCliJson<SlotJson>(['slot', 'status', ...flags(setup.slot)]);
    expect(status.json.active).toBe(true);
    const { rows } = await db().query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender' AND pid = $1`, [status.json.activePid]);
    expect(rows).toHaveLength(1);

    const [refused, advance] = await Promise.all([
      runCli(['slot', 'drop', ...flags(setup.slot)]),
      runCli(['slot', 'advance', formatLsn(await currentWalLsn(db())), '--yes-skip-events', ...flags(setup.slot)]),
    ]);
    expect(refused.code).toBe(6);
    expect(refused.stderr).toContain(`is in use by backend pid ${status.json.activePid}`);
    expect(refused.stderr).toContain(`are never streamed; after outbox-relay slot create --slot ${setup.slot} --publication outbox_relay, re-send them from the table with outbox-relay republish --since`);
    expect(refused.stderr).toContain('--force');
    expect(await slotExists(setup.slot)).toBe(true);
    expect(advance.code).toBe(1);
    expect(advance.stderr).toContain('stop the relay first');

    const forced = await runCliJson<{ dropped: boolean; terminatedPids: number[]; confirmedLsn: string; lagBytes: number; consequence: string }>(['slot', 'drop', '--force', '--json', ...flags(setup.slot)]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.json).toMatchObject({ dropped: true, terminatedPids: [status.json.activePid] });
    // A concrete --since only when the slot had confirmed all WAL written; else from the last delivered event.
    if (forced.json.lagBytes === 0) expect(forced.json.consequence).toMatch(/republish --since '\d{4}-\d\d-\d\dT[^']+'/);
    else expect(forced.json.consequence).toContain(`after the slot's confirmed position ${forced.json.confirmedLsn} (${forced.json.lagBytes} bytes of WAL behind the server)`);
    expect(await slotExists(setup.slot)).toBe(false);
    const again = await runCli(['slot', 'drop', ...flags(setup.slot)]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('does not exist, nothing to drop');
  });

  it('drop refuses while a relay holds the slot\'s lock before it streams (its start), as for an active slot', async () => {
    const setup = await setupOutbox(db());
    // What a starting relay holds on its replication connection between its checks and START_REPLICATION.
    const starting = new pg.Client({ connectionString: db().url });
    await starting.connect();
    try {
      const { rows } = await starting.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_advisory_lock($1, $2)', [SLOT_LOCK_CLASS, slotLockKey(setup.slot)]);
      const refused = await runCli(['slot', 'drop', ...flags(setup.slot)]);
      expect(refused.code, refused.stderr).toBe(6);
      expect(refused.stderr).toContain(`is in use by backend pid ${rows[0]!.pid}`);
      expect(await slotExists(setup.slot)).toBe(true);
    } finally {
      await starting.end();
    }
    expect((await runCli(['slot', 'drop', ...flags(setup.slot)])).code).toBe(0);
    expect(await slotExists(setup.slot)).toBe(false);
  });

  it('advance refuses while a relay holds the slot\'s lock before it streams (its start), as for an active slot', async () => {
    const setup = await setupOutbox(db());
    const from = await slotConfirmedLsn(db(), setup.slot);
    await insertEvents(db(), 1);
    const to = formatLsn(await currentWalLsn(db()));
    // What a starting relay holds on its replication connection between its checks and START_REPLICATION.
    const starting = new pg.Client({ connectionString: db().url });
    await starting.connect();
    try {
      const { rows } = await starting.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_advisory_lock($1, $2)', [SLOT_LOCK_CLASS, slotLockKey(setup.slot)]);
      const refused = await runCli(['slot', 'advance', to, '--yes-skip-events', ...flags(setup.slot, setup.publication)]);
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stderr).toContain(`PG_SLOT_ACTIVE: replication slot "${setup.slot}" is in use by backend pid ${rows[0]!.pid}`);
      expect(await slotConfirmedLsn(db(), setup.slot)).toBe(from);
    } finally {
      await starting.end();
    }
    expect((await runCli(['slot', 'advance', to, '--yes-skip-events', ...flags(setup.slot, setup.publication)])).code).toBe(0);
  });

  it('drop of a slot with events it never delivered (a halted relay) names its confirmed position, not the drop, as where the re-send starts', async () => {
    const setup = await setupOutbox(db());
    const { rows } = await db().query<{ lsn: string }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [setup.slot]);
    await insertEvents(db(), 3);
    const dropped = await runCli(['slot', 'drop', ...flags(setup.slot)]);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(dropped.stdout).toContain(`events committed after the slot's confirmed position ${rows[0]!.lsn} (`);
    expect(dropped.stdout).toMatch(/republish --since '<T>' --publication outbox_relay --table \S+ .*, T = the commit time of the last event delivered/);
    // Before, it printed --since with the time of the drop: the three events, committed before it, were left out.
    expect(dropped.stdout).not.toMatch(/--since '\d{4}-/);
  });

  it('rejects identifiers that are not plain names (exit 2, nothing runs); a bad env value exits 2 naming it; an unreachable server exits 1', async () => {
    const injections: string[][] = [
      ['slot', 'create', '--postgres-url', db().url, '--slot', 'x; drop table outbox'],
      ['slot', 'drop', '--postgres-url', db().url, '--slot', "x'); SELECT pg_drop_replication_slot('y"],
      ['publication', 'create', '--postgres-url', db().url, '--publication', 'p"; DROP TABLE outbox; --'],
      ['setup', '--postgres-url', db().url, '--table', 'outbox; DROP TABLE outbox'],
    ];
    // Slots are server-wide and other test files run beside this one: only this database's count.
    const ourSlots = async () => (await db().query('SELECT slot_name FROM pg_replication_slots WHERE database = current_database() ORDER BY 1')).rows;
    const slotsBefore = await ourSlots();
    for (const [i, result] of (await Promise.all(injections.map((args) => runCli(args)))).entries()) {
      expect(result.code, injections[i]!.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/invalid flag --(slot|publication|table)/);
    }
    expect((await db().query(`SELECT to_regclass('public.outbox') IS NOT NULL AS present`)).rows[0]).toEqual({ present: true });
    expect(await ourSlots()).toEqual(slotsBefore);

    const badEnv = await runCli(['slot', 'status', '--postgres-url', db().url], { OUTBOX_RELAY_SLOT: 'bad name' });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toContain('invalid environment variable OUTBOX_RELAY_SLOT');

    const unreachable = await runCliJson<{ error: { code: string } }>(['slot', 'list', '--postgres-url', `postgres://postgres@127.0.0.1:${await freePort()}/x`]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.json.error.code).toBe('PG_CONNECT_FAILED');
  });
});

// PostgreSQL 18's pgoutput decodes past a publication it cannot find with a warning ("skipped loading
// publication") where 15 to 17 failed: the preview's peek then counted 0 transactions and 0 events, and told the
// operator that nothing would be skipped.
describe.skipIf(!stack().owned.postgres)('cli: slot advance on PostgreSQL 18, the publication dropped', () => {
  const db = useDatabaseOn(18, 'adv18');

  it('the preview does not claim 0 events: it says they could not be counted, and why; dropped, then re-created', async () => {
    const [slot, publication] = [uniqueName('slot'), uniqueName('pub')];
    const flags = ['--postgres-url', db().url, '--slot', slot, '--publication', publication];
    await db().query(`CREATE PUBLICATION ${publication} FOR TABLE outbox WITH (publish = 'insert')`);
    expect((await runCli(['slot', 'create', ...flags])).code).toBe(0);
    await db().query(`DROP PUBLICATION ${publication}`);
    await insertEvents(db(), 3);
    await insertEvents(db(), 2);
    const to = formatLsn(await currentWalLsn(db()));

    const dropped = await runCliJson<{ error: { code: string; message: string; details: Record<string, unknown> } }>(['slot', 'advance', to, '--json', ...flags]);
    expect(dropped.code, dropped.stderr).toBe(6);
    expect(dropped.json.error).toMatchObject({ code: 'CONFIRMATION_REQUIRED', details: { transactions: null, events: null } });
    expect(dropped.json.error.message).toContain(`could not be counted (publication "${publication}" does not exist, and the count decodes the WAL with it: check --publication)`);

    // Re-created: it exists, but the WAL in the range was written while it did not, and pgoutput skips it alike.
    await db().query(`CREATE PUBLICATION ${publication} FOR TABLE outbox WITH (publish = 'insert')`);
    const recreated = await runCli(['slot', 'advance', to, ...flags]);
    expect(recreated.code, recreated.stderr).toBe(6);
    expect(recreated.stderr).not.toContain('0 outbox event(s)');
    expect(recreated.stderr).toContain(`could not be counted (replication slot "${slot}" cannot stream past WAL written while publication "${publication}" did not exist: skipped loading publication "${publication}"`);
  });
});
