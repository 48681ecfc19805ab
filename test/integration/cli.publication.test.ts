import { describe, expect, it } from 'vitest';
import { runCli, runCliJson } from '../support/cli.js';
import { useDatabase } from '../support/database.js';
import { insertEvents, setupOutbox } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { uniqueName } from '../support/services.js';

interface PublicationJson {
  name: string;
  owner: string;
  allTables: boolean;
  publish: string[];
  tables: { schema: string; table: string; rowFilter: string | null }[];
}

describe('cli: outbox-relay publication', () => {
  const db = useDatabase('clipub');

  const flags = (publication: string) => ['--postgres-url', db().url, '--publication', publication];
  const catalog = async (publication: string) =>
    (await db().query<{ pubinsert: boolean; pubupdate: boolean; pubdelete: boolean; pubtruncate: boolean }>('SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1', [publication]))
      .rows[0];

  it('create (with a row filter), show as text and --json, create again, drop, drop again', async () => {
    const publication = uniqueName('pub');
    const created = await runCli(['publication', 'create', ...flags(publication), '--row-filter', "aggregate_type <> 'internal'"]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain(`publication "${publication}": created`);
    expect(await catalog(publication)).toEqual({ pubinsert: true, pubupdate: false, pubdelete: false, pubtruncate: false });

    const [show, text, again] = await Promise.all([
      runCliJson<PublicationJson>(['publication', 'show', ...flags(publication)]),
      runCli(['publication', 'show', ...flags(publication)]),
      runCli(['publication', 'create', ...flags(publication)]),
    ]);
    expect(show.code).toBe(0);
    expect(show.json).toEqual({
      name: publication,
      owner: 'postgres',
      allTables: false,
      // publish_via_partition_root, as setup and publication create set it (2f88136).
      viaRoot: true,
      publish: ['insert'],
      tables: [{ schema: 'public', table: 'outbox', rowFilter: "(aggregate_type <> 'internal'::text)" }],
    });
    expect(text.stdout).toMatch(/^publish {6}insert$/m);
    expect(text.stdout).toMatch(/^public\.outbox {2}\(aggregate_type <> 'internal'::text\)$/m);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`publication "${publication}": already exists`);

    const dropped = await runCli(['publication', 'drop', ...flags(publication)]);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(dropped.stdout).toContain(`publication "${publication}": dropped`);
    expect(await catalog(publication)).toBeUndefined();
    const [dropAgain, showMissing] = await Promise.all([runCli(['publication', 'drop', ...flags(publication)]), runCliJson<{ error: { code: string } }>(['publication', 'show', ...flags(publication)])]);
    expect(dropAgain.code).toBe(0);
    expect(dropAgain.stdout).toContain('does not exist, nothing to drop');
    expect(showMissing.code).toBe(1);
    expect(showMissing.json.error.code).toBe('PG_PUBLICATION_MISSING');
  });

  it('create of one that exists without the --row-filter asked for, or publishing more than inserts: exit 1 with PG_SETUP_CHECKS_FAILED and the ALTER PUBLICATION to run; once run, "already exists"', async () => {
    const publication = uniqueName('pub');
    await db().query(`CREATE PUBLICATION ${publication} FOR TABLE outbox WITH (publish = 'insert, update')`);
    const filter = "aggregate_type <> 'internal'";
    const differs = await runCli(['publication', 'create', ...flags(publication), '--row-filter', filter]);
    expect(differs.code, differs.stderr).toBe(1);
    expect(differs.stdout).toContain(`fix: ALTER PUBLICATION "${publication}" SET (publish = 'insert');`);
    expect(differs.stdout).toContain(`fix: as the table owner: ALTER PUBLICATION "${publication}" SET TABLE "public"."outbox" WHERE (${filter});`);
    expect(differs.stderr.split('\n').filter((l) => l.startsWith('outbox-relay: '))).toEqual([
      `outbox-relay: PG_SETUP_CHECKS_FAILED: 2 check(s) failed: publication ${publication}, row filter public.outbox; publication "${publication}" exists, and differs from the one asked for`,
    ]);
    await db().query(`ALTER PUBLICATION ${publication} SET (publish = 'insert')`);
    await db().query(`ALTER PUBLICATION ${publication} SET TABLE outbox WHERE (${filter})`);
    const same = await runCli(['publication', 'create', ...flags(publication), '--row-filter', filter]);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toContain(`publication "${publication}": already exists`);
    await db().query(`DROP PUBLICATION ${publication}`);
  });

  it("create of one with another table too, without the --row-filter asked for: the fix leaves the other table in it (SET TABLE, the fix before, took it out); once run, \"already exists\"", async () => {
    const publication = uniqueName('pub');
    const other = uniqueName('other');
    await db().query(`CREATE TABLE ${other} (id int)`);
    await db().query(`CREATE PUBLICATION ${publication} FOR TABLE outbox, ${other} WITH (publish = 'insert')`);
    const filter = "aggregate_type <> 'internal'";
    const differs = await runCli(['publication', 'create', ...flags(publication), '--row-filter', filter]);
    expect(differs.code, differs.stderr).toBe(1);
    const fix = `BEGIN; ALTER PUBLICATION "${publication}" DROP TABLE "public"."outbox"; ALTER PUBLICATION "${publication}" ADD TABLE "public"."outbox" WHERE (${filter}); COMMIT;`;
    expect(differs.stdout).toContain(`fix: as the table owner: ${fix}`);
    await db().query(fix);
    const same = await runCli(['publication', 'create', ...flags(publication), '--row-filter', filter]);
    expect(same.code, same.stdout + same.stderr).toBe(0);
    const { rows } = await db().query<{ tablename: string }>('SELECT tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY tablename', [publication]);
    expect(rows.map((r) => r.tablename)).toEqual([other, 'outbox'].sort());
    await db().query(`DROP PUBLICATION ${publication}`);
  });

  it('drop while the relay\'s slot exists: refused (exit 6) saying what it costs; with --force the streaming relay ends at the next event, exit 1 with PG_PUBLICATION_MISSING and the fix', async () => {
    const setup = await setupOutbox(db());
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    const refused = await runCli(['publication', 'drop', ...flags(setup.publication), '--slot', setup.slot]);
    expect(refused.code, refused.stderr).toBe(6);
    expect(refused.stderr).toContain(`replication slot "${setup.slot}" streams with publication "${setup.publication}": without it the slot can no longer stream`);
    expect(refused.stderr).toContain('--force');
    expect((await db().query('SELECT 1 FROM pg_publication WHERE pubname = $1', [setup.publication])).rowCount).toBe(1);
    const dropped = await runCli(['publication', 'drop', ...flags(setup.publication), '--slot', setup.slot, '--force']);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(dropped.stdout).toMatch(new RegExp(`to go on: outbox-relay slot drop --slot ${setup.slot}, outbox-relay setup --slot ${setup.slot} --publication ${setup.publication} --table public\\.outbox .*, then outbox-relay republish --since`));
    await insertEvents(db(), 1);
    expect(await relay.exited).toBe(1);
    const errors = relay.logs.filter((l) => l.level === 'error');
    expect(errors.map((l) => l.code)).toEqual(['PG_PUBLICATION_MISSING']);
    // PostgreSQL fails the stream when it decodes the next change (18: warns that it skipped the publication, and
    // skips the change): that itself halts (retried, it fails at the same position every time), nothing retried
    // in between.
    expect(String(errors[0]!.err)).toContain(`publication "${setup.publication}" did not exist`);
    expect(relay.logs.filter((l) => l.code === 'PG_STREAM_FAILED')).toEqual([]);
    expect(String(errors[0]!.fix)).toContain('republish');
  });

  it('drop without --slot while another pgoutput slot of the database exists (a relay run with its own --slot): refused (exit 6) naming it; --force drops', async () => {
    const setup = await setupOutbox(db());
    try {
      // --slot left at its default (outbox_relay), which does not exist: the refusal comes from setup.slot.
      const refused = await runCli(['publication', 'drop', ...flags(setup.publication)]);
      expect(refused.code, refused.stderr).toBe(6);
      expect(refused.stderr).toContain(`"${setup.slot}" (inactive)`);
      expect(refused.stderr).toContain(`may stream with publication "${setup.publication}"`);
      expect(refused.stderr.split('\n').filter((l) => l.startsWith('outbox-relay: '))).toHaveLength(1);
      expect(await catalog(setup.publication)).toBeDefined();
      const forced = await runCli(['publication', 'drop', ...flags(setup.publication), '--force']);
      expect(forced.code, forced.stderr).toBe(0);
      expect(await catalog(setup.publication)).toBeUndefined();
    } finally {
      await db().query('SELECT pg_drop_replication_slot($1)', [setup.slot]);
    }
  });

  it('a row filter that could end its WHERE or the statement is refused before PostgreSQL sees it; one PostgreSQL rejects exits 2 too', async () => {
    const publication = uniqueName('pub');
    const attacks = [
      'true); DROP TABLE outbox; --',
      'true) , public.outbox WHERE (true',
      "aggregate_type = $$x$$ OR (true",
      "aggregate_type = E'\\'' ) ; DROP TABLE outbox; --'",
      'true /* comment */',
      "aggregate_type = 'unterminated",
    ];
    const results = await Promise.all(attacks.map((filter) => runCli(['publication', 'create', ...flags(publication), '--row-filter', filter])));
    for (const [i, result] of results.entries()) {
      expect(result.code, attacks[i]).toBe(2);
      expect(result.stderr, attacks[i]).toContain('invalid --row-filter');
    }
    const unknownColumn = await runCli(['publication', 'create', ...flags(publication), '--row-filter', 'no_such_column = 1']);
    expect(unknownColumn.code).toBe(2);
    expect(unknownColumn.stderr).toContain('PostgreSQL rejected --row-filter "no_such_column = 1": column "no_such_column" does not exist');
    expect(await catalog(publication)).toBeUndefined();
    expect((await db().query(`SELECT to_regclass('public.outbox') IS NOT NULL AS present`)).rows[0]).toEqual({ present: true });
  });
});
