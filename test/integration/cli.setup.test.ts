import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createPublicationSql } from '../../src/ops/publication-sql.js';
import { repoRoot } from '../../stack/index.js';
import { runCli, runCliJson, startCli } from '../support/cli.js';
import { useDatabase } from '../support/database.js';
import { commitRecordLsn, currentWalLsn, insertEvents, slotConfirmedLsn } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { createTopic, readTopic, stack, uniqueName } from '../support/services.js';

interface SetupJson {
  ok: boolean;
  dryRun: boolean;
  checks: { name: string; ok: boolean; detail: string; fix?: string }[];
  steps: { object: string; name: string; result: string; sql: string }[];
  error?: { code: string };
}

describe('cli: outbox-relay setup', () => {
  const db = useDatabase('clisetup');

  const names = () => ({ slot: uniqueName('slot'), publication: uniqueName('pub') });
  const flags = (n: { slot: string; publication: string }, url = db().url) => ['--postgres-url', url, '--slot', n.slot, '--publication', n.publication];
  const slotRow = async (slot: string) =>
    (await db().query<{ plugin: string; database: string; confirmed: string }>('SELECT plugin, database, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0];
  const publicationRow = async (pub: string) =>
    (
      await db().query<{ pubinsert: boolean; pubupdate: boolean; pubdelete: boolean; pubtruncate: boolean; tables: string[]; filters: (string | null)[] }>(
        `SELECT p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate,
                array(SELECT schemaname || '.' || tablename FROM pg_publication_tables t WHERE t.pubname = p.pubname) AS tables,
                array(SELECT rowfilter FROM pg_publication_tables t WHERE t.pubname = p.pubname) AS filters
           FROM pg_publication p WHERE p.pubname = $1`,
        [pub],
      )
    ).rows[0];

  it('a partitioned outbox table: setup publishes its rows under its own name (publish_via_partition_root), and the relay streams them', async () => {
    const n = names();
    const table = uniqueName('outbox_parted');
    await db().query(`CREATE TABLE ${table} (LIKE outbox INCLUDING DEFAULTS, PRIMARY KEY (id)) PARTITION BY HASH (id)`);
    for (const i of [0, 1]) await db().query(`CREATE TABLE ${table}_${i} PARTITION OF ${table} FOR VALUES WITH (MODULUS 2, REMAINDER ${i})`);
    const setup = await runCli(['setup', ...flags(n), '--table', `public.${table}`]);
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    const topic = uniqueName('parted');
    await createTopic(topic);
    const relay = startRelay(['run', ...flags(n), '--table', `public.${table}`, '--topic', topic, '--kafka-brokers', stack().brokers.join(',')]);
    // Before: PostgreSQL published the partitions, which no mapping names: PG_TABLE_NOT_PUBLISHED at every start.
    await relay.waitForMessage('streaming from PostgreSQL');
    const ids = Array.from({ length: 6 }, () => randomUUID());
    await db().query(`INSERT INTO ${table} (id, aggregate_type, aggregate_id, event_type, payload) SELECT u, 'order', 'o-1', 'OrderPlaced', '{}' FROM unnest($1::uuid[]) u`, [ids]);
    expect((await readTopic(topic, { expected: ids.length })).map((r) => r.key).sort()).toEqual([...ids].sort());
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('a partitioned outbox table in an existing publication without publish_via_partition_root: the fix is SET (publish_via_partition_root = true), which makes setup pass', async () => {
    const n = names();
    const table = uniqueName('outbox_parted');
    await db().query(`CREATE TABLE ${table} (LIKE outbox INCLUDING DEFAULTS, PRIMARY KEY (id)) PARTITION BY HASH (id)`);
    await db().query(`CREATE TABLE ${table}_0 PARTITION OF ${table} FOR VALUES WITH (MODULUS 1, REMAINDER 0)`);
    // As setup made it before 2f88136.
    await db().query(`CREATE PUBLICATION ${n.publication} FOR TABLE ${table} WITH (publish = 'insert')`);
    const checked = await runCliJson<SetupJson>(['setup', '--dry-run', ...flags(n), '--table', `public.${table}`]);
    const failed = checked.json.checks.filter((c) => !c.ok);
    // Before: "does not include" with ALTER PUBLICATION … ADD TABLE, which fails: the table is a member already.
    expect(failed.map((c) => c.fix)).toEqual([`ALTER PUBLICATION "${n.publication}" SET (publish_via_partition_root = true);  (and, if public.${table} is not a member yet: ALTER PUBLICATION "${n.publication}" ADD TABLE "public"."${table}";)`]);
    // The relay's pre-flight names the same fix.
    await db().query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [n.slot]);
    const relay = startRelay(['run', ...flags(n), '--table', `public.${table}`, '--kafka-brokers', stack().brokers.join(',')]);
    const halt = await relay.waitForLog((l) => l.level === 'error', 60_000, 'the pre-flight refusal');
    expect(halt).toMatchObject({ code: 'PG_TABLE_NOT_PUBLISHED', fix: expect.stringMatching(new RegExp(`^ALTER PUBLICATION "${n.publication}" SET \\(publish_via_partition_root = true\\);  \\(outbox-relay setup and publication create set it\\); if they were published before`)) as unknown });
    relay.signal('SIGTERM');
    await relay.exited;
    await db().query('SELECT pg_drop_replication_slot($1)', [n.slot]);
    await db().query(`ALTER PUBLICATION ${n.publication} SET (publish_via_partition_root = true)`);
    const passed = await runCliJson<SetupJson>(['setup', '--dry-run', ...flags(n), '--table', `public.${table}`]);
    expect(passed.json.checks.filter((c) => !c.ok)).toEqual([]);
  });

  it('mapped columns PostgreSQL would not send (one a column list leaves out, one generated): setup fails naming each, its setting and fix; the relay says so at its start and halts with SCHEMA_COLUMN_MISSING at the first such event, confirming nothing past it; after the fix setup passes', async () => {
    const n = names();
    const table = uniqueName('outbox_cols');
    await db().query(`CREATE TABLE ${table} (LIKE outbox INCLUDING DEFAULTS, kind text GENERATED ALWAYS AS (event_type || '!') STORED, PRIMARY KEY (id))`);
    const listed = 'id, aggregate_type, aggregate_id, event_type, payload';
    await db().query(`CREATE PUBLICATION ${n.publication} FOR TABLE ${table} (${listed}) WHERE (aggregate_type <> 'internal') WITH (publish = 'insert')`);
    const tables = ['--tables', JSON.stringify([{ table: `public.${table}`, mapping: { type: 'kind' } }])];
    const checked = await runCliJson<SetupJson>(['setup', '--dry-run', ...flags(n), ...tables]);
    expect(checked.code, checked.stderr).toBe(1);
    // The list it had, and the column it left out, in the table's order; its row filter kept.
    const fix = `add the missing columns to its column list, in one transaction (a row written while the table is out of the publication is never streamed): BEGIN; ALTER PUBLICATION "${n.publication}" DROP TABLE "public"."${table}"; ALTER PUBLICATION "${n.publication}" ADD TABLE "public"."${table}" ("id", "aggregate_type", "aggregate_id", "event_type", "payload", "headers") WHERE ((aggregate_type <> 'internal'::text)); COMMIT;`;
    // Before: every check passed, and the relay halted at the first event written.
    expect(checked.json.checks.filter((c) => !c.ok)).toEqual([
      {
        name: `columns of public.${table}`,
        ok: false,
        detail: `kind (mapping.type): "kind" is a generated column of public.${table}, which pgoutput does not send before PostgreSQL 18; headers (mapping.headers): publication "${n.publication}" publishes only columns ${listed} of public.${table}`,
        fix: `map a column the writer fills (in the same INSERT); ${fix}`,
      },
    ]);

    await db().query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [n.slot]);
    const topic = uniqueName('cols');
    await createTopic(topic);
    const relay = startRelay(['run', ...flags(n), ...tables, '--topic', topic, '--kafka-brokers', stack().brokers.join(','), '--status-interval', '200ms']);
    await relay.waitForMessage('streaming from PostgreSQL');
    const warned = relay.logs.filter((l) => l.level === 'warn' && l.column !== undefined);
    expect(warned.map((l) => [l.column, l.setting, l.hint]), relay.dump()).toEqual([
      ['kind', 'mapping.type', 'map a column the writer fills (in the same INSERT)'],
      ['headers', 'mapping.headers', fix],
    ]);
    expect(String(warned[1]!.msg)).toContain('the relay halts with SCHEMA_COLUMN_MISSING at the first event of public.' + table);
    const from = await currentWalLsn(db());
    const { rows: xid } = await db().query<{ xid: string }>(`INSERT INTO ${table} (id, aggregate_type, aggregate_id, event_type, payload) VALUES ($1, 'order', 'o-1', 'OrderPlaced', '{}') RETURNING xmin::text AS xid`, [randomUUID()]);
    expect((await relay.waitForLog((l) => l.level === 'error', 60_000, 'the halt')).code).toBe('SCHEMA_COLUMN_MISSING');
    expect(await slotConfirmedLsn(db(), n.slot)).toBeLessThanOrEqual(await commitRecordLsn(db(), xid[0]!.xid, from));
    expect(await readTopic(topic, { settleMs: 500 })).toEqual([]);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(1);

    await db().query(fix.slice(fix.indexOf('BEGIN;')));
    const fixed = await runCliJson<SetupJson>(['setup', '--dry-run', ...flags(n), '--table', `public.${table}`]);
    expect(fixed.json.checks.filter((c) => !c.ok)).toEqual([]);
    const { rows: published } = await db().query<{ attnames: string[]; rowfilter: string }>('SELECT attnames::text[] AS attnames, rowfilter FROM pg_publication_tables WHERE pubname = $1', [n.publication]);
    expect(published).toEqual([{ attnames: [...listed.split(', '), 'headers'], rowfilter: "(aggregate_type <> 'internal'::text)" }]);
    expect(fixed.json.checks.find((c) => c.name === `columns of public.${table}`)?.detail).toBe('id, payload, event_type, aggregate_type, aggregate_id, headers published');
    await runCli(['slot', 'drop', ...flags(n), '--force']);
  });

  it('--dry-run runs the checks and prints the SQL, and creates nothing', async () => {
    const n = names();
    const result = await runCli(['setup', '--dry-run', ...flags(n)]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/ok\s+wal_level\s+logical/);
    expect(result.stdout).toContain(`CREATE PUBLICATION "${n.publication}" FOR TABLE "public"."outbox" WITH (publish = 'insert', publish_via_partition_root = true);`);
    expect(result.stdout).toContain(`SELECT pg_create_logical_replication_slot('${n.slot}', 'pgoutput');`);
    expect(await slotRow(n.slot)).toBeUndefined();
    expect(await publicationRow(n.publication)).toBeUndefined();
  });

  it('sql/002_publication.sql, run twice, creates the publication setup would: setup then finds it, creates only the slot, and the relay streams through it', async () => {
    // The file names the defaults (publication outbox_relay, table public.outbox): the publication is this file's
    // database's own, the slot (server-wide) is not the default's.
    const n = { slot: uniqueName('slot'), publication: 'outbox_relay' };
    const script = readFileSync(join(repoRoot, 'sql/002_publication.sql'), 'utf8');
    for (let run = 0; run < 2; run++) await db().query(script);
    expect(await publicationRow(n.publication)).toEqual({ pubinsert: true, pubupdate: false, pubdelete: false, pubtruncate: false, tables: ['public.outbox'], filters: [null] });
    const viaRoot = await db().query<{ pubviaroot: boolean }>('SELECT pubviaroot FROM pg_publication WHERE pubname = $1', [n.publication]);
    expect(viaRoot.rows).toEqual([{ pubviaroot: true }]);

    const setup = await runCliJson<SetupJson>(['setup', ...flags(n)]);
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.json.checks.filter((c) => !c.ok)).toEqual([]);
    expect(setup.json.steps.map((s) => [s.object, s.result])).toEqual([
      ['publication', 'exists'],
      ['slot', 'created'],
    ]);
    const topic = uniqueName('sqlpub');
    await createTopic(topic);
    const relay = startRelay(['run', ...flags(n), '--topic', topic, '--kafka-brokers', stack().brokers.join(',')]);
    await relay.waitForMessage('streaming from PostgreSQL');
    const inserted = await insertEvents(db(), 3);
    expect((await readTopic(topic, { expected: inserted.length })).map((r) => r.key).sort()).toEqual(inserted.map((e) => e.id).sort());
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
    await db().query(`DROP PUBLICATION ${n.publication}`);
  });

  it('creates the insert-only publication and the pgoutput slot; a second run finds both and changes nothing', async () => {
    const n = names();
    const first = await runCli(['setup', ...flags(n)]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`publication "${n.publication}": created`);
    expect(first.stdout).toContain(`slot "${n.slot}": created`);
    expect(await publicationRow(n.publication)).toEqual({ pubinsert: true, pubupdate: false, pubdelete: false, pubtruncate: false, tables: ['public.outbox'], filters: [null] });
    const slot = await slotRow(n.slot);
    expect(slot).toMatchObject({ plugin: 'pgoutput', database: db().name });

    const second = await runCliJson<SetupJson>(['setup', ...flags(n)]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.json.ok).toBe(true);
    expect(second.json.steps.map((s) => [s.object, s.result])).toEqual([
      ['publication', 'exists'],
      ['slot', 'exists'],
    ]);
    expect(second.json.checks.every((c) => c.ok)).toBe(true);
    expect((await slotRow(n.slot))?.confirmed).toBe(slot!.confirmed);
    const third = await runCli(['setup', ...flags(n)]);
    expect(third.stdout).toContain(`publication "${n.publication}": already exists`);
    expect(third.stdout).toContain(`slot "${n.slot}": already exists`);
  });

  it('two setups at once (two replicas\' init containers): the one whose CREATE PUBLICATION waited for the other\'s commit takes that publication (exit 0) and creates the slot; one that differs from what it asked for fails its checks and creates no slot', async () => {
    const other = new pg.Client({ connectionString: db().url });
    await other.connect();
    try {
      /** Runs setup while `other` holds `sql` uncommitted; commits once setup's CREATE PUBLICATION waits for it. */
      const raceWith = async (n: { slot: string; publication: string }, sql: string) => {
        await other.query('BEGIN');
        await other.query(sql);
        const setup = startCli(['setup', ...flags(n), '--json']);
        for (let waited = 0; ; waited += 50) {
          const { rows } = await db().query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'CREATE PUBLICATION%' AND query LIKE $1", [`%${n.publication}%`]);
          if (rows.length > 0) break;
          if (waited > 30_000) throw new Error('setup never waited for the other CREATE PUBLICATION');
          await new Promise((r) => setTimeout(r, 50));
        }
        await other.query('COMMIT');
        const result = await setup.result;
        return { ...result, json: JSON.parse(result.stdout) as SetupJson };
      };

      const same = names();
      const taken = await raceWith(same, createPublicationSql(same.publication, [{ schema: 'public', table: 'outbox' }]));
      // Before: exit 1, PG_QUERY_FAILED (SQLSTATE 23505, duplicate key in pg_publication_pubname_index).
      expect(taken.code, taken.stderr).toBe(0);
      expect(taken.json.steps.map((s) => [s.object, s.result])).toEqual([
        ['publication', 'exists'],
        ['slot', 'created'],
      ]);
      expect(await slotRow(same.slot)).toMatchObject({ plugin: 'pgoutput' });

      const differs = names();
      const refused = await raceWith(differs, `CREATE PUBLICATION "${differs.publication}" FOR TABLE public.outbox WITH (publish = 'insert, update')`);
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.json.checks.filter((c) => !c.ok)).toEqual([expect.objectContaining({ fix: expect.stringContaining(`ALTER PUBLICATION "${differs.publication}" SET (publish = 'insert')`) })]);
      expect(refused.json.steps.map((s) => [s.object, s.result])).toEqual([
        ['publication', 'exists'],
        ['slot', 'planned'],
      ]);
      expect(await slotRow(differs.slot)).toBeUndefined();
    } finally {
      await other.end();
    }
  });

  it('--row-filter publishes only matching rows; a filter that could leave its WHERE exits 2 before anything is created', async () => {
    const n = names();
    const escape = await runCli(['setup', ...flags(n), '--row-filter', 'true) , public.outbox WHERE (true']);
    expect(escape.code).toBe(2);
    expect(escape.stderr).toContain('closes a parenthesis it did not open');
    expect(await publicationRow(n.publication)).toBeUndefined();

    const result = await runCli(['setup', ...flags(n), '--row-filter', "aggregate_type <> 'internal'"]);
    expect(result.code, result.stderr).toBe(0);
    expect((await publicationRow(n.publication))?.filters).toEqual(["(aggregate_type <> 'internal'::text)"]);
    await insertEvents(db(), 1);
    await db().query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES (gen_random_uuid(), 'internal', 'x', 'Y', '{}')`);
    const { rows } = await db().query<{ inserts: number }>(
      `SELECT count(*) FILTER (WHERE get_byte(data, 0) = 73)::int AS inserts FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)`,
      [n.slot, n.publication],
    );
    expect(rows[0]?.inserts).toBe(1);
  });

  it('--row-filter on an existing publication: the same filter passes, another or none fails with the ALTER that sets it; after running it, setup passes', async () => {
    const n = names();
    const filter = "aggregate_type <> 'internal'";
    await db().query(`CREATE PUBLICATION ${n.publication} FOR TABLE outbox WITH (publish = 'insert')`);
    const unfiltered = await runCliJson<SetupJson>(['setup', ...flags(n), '--row-filter', filter]);
    expect(unfiltered.code).toBe(1);
    const failed = unfiltered.json.checks.filter((c) => !c.ok);
    expect(failed.map((c) => c.name)).toEqual(['row filter public.outbox']);
    expect(failed[0]!.detail).toBe(`publication ${n.publication} filters nothing, not WHERE (aggregate_type <> 'internal'::text)`);
    expect(await slotRow(n.slot)).toBeUndefined();

    await db().query(/ALTER PUBLICATION [^;]+;/.exec(failed[0]!.fix!)![0]);
    // PostgreSQL's text of the filter differs from the flag's (casts, parentheses): compared as PostgreSQL reads both.
    const same = await runCliJson<SetupJson>(['setup', ...flags(n), '--row-filter', `  aggregate_type<>'internal'  `]);
    expect(same.code, JSON.stringify(same.json.checks)).toBe(0);
    expect(same.json.checks.find((c) => c.name === 'row filter public.outbox')).toMatchObject({ ok: true, detail: "WHERE (aggregate_type <> 'internal'::text)" });
    expect(same.json.checks.find((c) => c.name === `publication ${n.publication}`)?.detail).toBe("publishes insert of public.outbox WHERE (aggregate_type <> 'internal'::text)");
    expect(same.json.steps.map((s) => [s.object, s.result])).toEqual([
      ['publication', 'exists'],
      ['slot', 'created'],
    ]);

    const other = await runCliJson<SetupJson>(['setup', ...flags(n), '--row-filter', "aggregate_type <> 'audit'"]);
    expect(other.code).toBe(1);
    expect(other.json.checks.find((c) => !c.ok)?.detail).toBe(`publication ${n.publication} filters WHERE (aggregate_type <> 'internal'::text), not WHERE (aggregate_type <> 'audit'::text)`);
    await db().query('SELECT pg_drop_replication_slot($1)', [n.slot]);
  });

  it('a slot without its publication fails the checks and creates nothing; the fix (drop the slot, setup again) creates both in order', async () => {
    const n = names();
    await db().query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [n.slot]);
    const result = await runCliJson<SetupJson>(['setup', ...flags(n)]);
    expect(result.code).toBe(1);
    const failed = result.json.checks.filter((c) => !c.ok);
    expect(failed).toMatchObject([{ name: `slot ${n.slot}`, detail: expect.stringContaining(`publication "${n.publication}" does not`) as unknown }]);
    expect(failed[0]!.fix).toContain(`outbox-relay slot drop --slot ${n.slot}, then outbox-relay setup`);
    expect(await publicationRow(n.publication)).toBeUndefined();

    expect((await runCli(['slot', 'drop', ...flags(n)])).code).toBe(0);
    const fixed = await runCli(['setup', ...flags(n)]);
    expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0);
    // The slot after the publication streams the next row.
    await insertEvents(db(), 1);
    const { rows } = await db().query<{ inserts: number }>(
      `SELECT count(*) FILTER (WHERE get_byte(data, 0) = 73)::int AS inserts FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)`,
      [n.slot, n.publication],
    );
    expect(rows[0]?.inserts).toBe(1);
    await db().query('SELECT pg_drop_replication_slot($1)', [n.slot]);
  });

  it('run again while a relay streams from the slot: its WAL sender is not counted against max_wal_senders', async () => {
    const n = names();
    expect((await runCli(['setup', ...flags(n)])).code).toBe(0);
    const topic = uniqueName('topic');
    await createTopic(topic, 1);
    const relay = startRelay(['run', ...flags(n), '--kafka-brokers', stack().brokers.join(','), '--topic', topic]);
    try {
      await relay.waitForMessage('streaming from PostgreSQL');
      const again = await runCliJson<SetupJson>(['setup', ...flags(n)]);
      expect(again.code, JSON.stringify(again.json.checks)).toBe(0);
      expect(again.json.checks.find((c) => c.name === 'max_wal_senders')?.detail).toContain(`one by the connection streaming from slot "${n.slot}"`);
    } finally {
      relay.signal('SIGTERM');
      expect(await relay.exited).toBe(0);
    }
    await db().query('SELECT pg_drop_replication_slot($1)', [n.slot]);
  });

  it('as a role without REPLICATION: exits 1 naming each missing privilege and the statement that fixes it; after running those, setup succeeds', async () => {
    const role = uniqueName('weak');
    await db().query(`CREATE ROLE ${role} LOGIN`);
    const url = new URL(db().url);
    url.username = role;
    const n = names();
    try {
      const denied = await runCliJson<SetupJson>(['setup', ...flags(n, url.toString())]);
      expect(denied.code).toBe(1);
      expect(denied.json.ok).toBe(false);
      expect(denied.json.error?.code).toBe('PG_SETUP_CHECKS_FAILED');
      const failed = Object.fromEntries(denied.json.checks.filter((c) => !c.ok).map((c) => [c.name, c.fix]));
      expect(failed['replication privilege']).toBe(`as a superuser: ALTER ROLE "${role}" WITH REPLICATION;`);
      expect(failed['table public.outbox']).toContain(`CREATE PUBLICATION "${n.publication}" FOR TABLE "public"."outbox" WITH (publish = 'insert', publish_via_partition_root = true);`);
      expect(await slotRow(n.slot)).toBeUndefined();
      expect(await publicationRow(n.publication)).toBeUndefined();

      const text = await runCli(['setup', ...flags(n, url.toString())]);
      expect(text.code).toBe(1);
      expect(text.stdout).toMatch(/FAIL\s+replication privilege\s+role "weak_[0-9a-f]+" has neither REPLICATION nor SUPERUSER/);
      expect(text.stdout).toContain(`fix: as a superuser: ALTER ROLE "${role}" WITH REPLICATION;`);
      expect(text.stderr).toContain('nothing was created');

      // Run exactly what the fixes say, as the superuser and as the table owner (the test database's superuser).
      await db().query(failed['replication privilege']!.replace('as a superuser: ', ''));
      await db().query(/CREATE PUBLICATION [^;]+;/.exec(failed['table public.outbox']!)![0]);
      const fixed = await runCli(['setup', ...flags(n, url.toString())]);
      expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0);
      expect(fixed.stdout).toContain(`publication "${n.publication}": already exists`);
      expect(fixed.stdout).toContain(`slot "${n.slot}": created`);
      expect(await slotRow(n.slot)).toMatchObject({ plugin: 'pgoutput' });
    } finally {
      await db().query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [n.slot]);
      await db().query(`DROP ROLE ${role}`);
    }
  });
});
