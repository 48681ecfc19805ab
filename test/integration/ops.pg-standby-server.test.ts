import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OTHER_POSTGRES_VERSIONS, PostgresServer, ensurePostgresBinaries, startStandby } from '../../stack/index.js';
import { STANDBY_FIX } from '../../src/ops/pg-refusals.js';
import { runCliJson } from '../support/cli.js';
import { createDatabase, pgUrl, stack, uniqueName } from '../support/services.js';

interface ErrorJson {
  error?: { code: string; message: string; fix: string };
  checks?: { name: string; ok: boolean; fix?: string }[];
}

/** One statement on its own connection: the servers here are this file's, not the shared one. */
async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

// A physical standby (in recovery) of a primary. PostgreSQL 16 and later accept pg_create_logical_replication_slot
// there, where 15 refused it: the operator commands must refuse it themselves, before creating or changing anything.
describe.skipIf(!stack().owned.postgres).each([15, 16] as const)('operator commands against a standby of PostgreSQL %i', (major) => {
  let primary: PostgresServer;
  let standby: PostgresServer;
  let primaryUrl: string;
  let standbyUrl: string;
  const [slot, publication] = [uniqueName('slot'), uniqueName('pub')];

  beforeAll(async () => {
    primary = new PostgresServer({ name: uniqueName(`primary${major}`), ...(major === 15 ? {} : { binDir: ensurePostgresBinaries(OTHER_POSTGRES_VERSIONS[major]) }) });
    await primary.start();
    const db = await createDatabase(`standby${major}`, primary.url());
    // On the primary, so that setup and slot create on the standby find it and go on to the slot.
    await db.query(`CREATE PUBLICATION ${publication} FOR TABLE outbox WITH (publish = 'insert')`);
    await db.close();
    standby = await startStandby(primary, uniqueName(`standby${major}`));
    primaryUrl = db.url;
    standbyUrl = pgUrl(db.name, standby.url());
  }, 300_000);

  afterAll(async () => {
    for (const server of [standby, primary]) {
      await server?.stop();
      server?.destroy();
    }
  });

  it('setup, slot create/drop/advance and publication create/drop exit 1 with the standby fix and create nothing; setup --dry-run reports the standby as its failed check', async () => {
    expect(await query<{ standby: boolean }>(standbyUrl, 'SELECT pg_is_in_recovery() AS standby')).toEqual([{ standby: true }]);
    expect(await query(standbyUrl, `SELECT 1 FROM pg_publication WHERE pubname = '${publication}'`)).toHaveLength(1);
    // A standby's slot creation waits for the primary's next running-transactions record (a busy primary writes one
    // every 15 s): logged here all along, it waits no longer than that.
    const snapshots = major >= 16 ? setInterval(() => void query(primaryUrl, 'SELECT pg_log_standby_snapshot()').catch(() => undefined), 200) : undefined;
    const connection = ['--postgres-url', standbyUrl, '--slot', slot, '--publication', publication, '--postgres-statement-timeout', '10s'];
    try {
      const commands = [
        ['setup'],
        ['slot', 'create'],
        ['publication', 'create'],
        ['publication', 'create', '--publication', uniqueName('pub')],
        ['publication', 'drop', '--force'],
        ['slot', 'drop'],
        ['slot', 'advance', '0/1000000', '--yes-skip-events'],
      ];
      const outcomes = [];
      const took: string[] = [];
      for (const command of commands) {
        const started = Date.now();
        const result = await runCliJson<ErrorJson>([...command, ...connection]);
        outcomes.push({ command: command.join(' '), code: result.code, error: result.json.error });
        took.push(`${command.slice(0, 2).join(' ')} ${Date.now() - started} ms`);
      }
      console.log(`PostgreSQL ${major} standby, each command's run until its exit: ${took.join(', ')}`);
      // Before: on 16 `setup` and `slot create` created the slot here, then failed reading it back (pg_current_wal_lsn()).
      expect(await query(standbyUrl, 'SELECT slot_name, slot_type FROM pg_replication_slots')).toEqual([]);
      const refused = { code: 1, error: { code: 'PG_QUERY_FAILED', message: expect.stringContaining('standby'), fix: STANDBY_FIX } };
      expect(outcomes).toMatchObject(commands.map((command) => ({ command: command.join(' '), ...refused })));

      const dryRun = await runCliJson<ErrorJson>(['setup', '--dry-run', ...connection]);
      expect(dryRun.code, dryRun.stdout + dryRun.stderr).toBe(1);
      expect(dryRun.json.checks).toEqual([{ name: 'primary', ok: false, detail: expect.stringContaining('pg_is_in_recovery()'), fix: STANDBY_FIX }]);
      expect(dryRun.json.error).toMatchObject({ code: 'PG_SETUP_CHECKS_FAILED' });
    } finally {
      clearInterval(snapshots);
    }
    // Nor anything on the primary, which the standby follows.
    expect(await query(primaryUrl, 'SELECT slot_name FROM pg_replication_slots')).toEqual([]);
    expect(await query<{ pubname: string }>(primaryUrl, 'SELECT pubname FROM pg_publication')).toEqual([{ pubname: publication }]);
  });
});
