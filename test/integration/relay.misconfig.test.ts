import { afterEach, describe, expect, it } from 'vitest';
import { useOwnServer } from '../support/own-server.js';
import { PostgresServer } from '../../stack/index.js';
import { insertEvents, setupOutbox, waitForConfirmedAll, type Inserted } from '../support/outbox.js';
import { killAllRelays, startRelay } from '../support/relay-process.js';
import { runCli } from '../support/cli.js';
import { createDatabase, readTopic, stack, uniqueName } from '../support/services.js';
import { useDatabase, useFreshDatabase } from '../support/database.js';

/** Runs the relay until it gives up; returns its exit code and the error line. */
async function failingRun(args: string[]) {
  const relay = startRelay(args);
  const code = await relay.exited;
  const error = relay.logs.find((l) => l.level === 'error');
  expect(error, relay.dump()).toBeDefined();
  return { code, code_: error!.code, err: String(error!.err), fix: String(error!.fix) };
}

describe('relay: misconfiguration is reported with the fix, and the process exits 1', () => {
  const db = useDatabase('misconfig');

  it('a missing slot, a missing publication, a table outside the publication', async () => {
    const setup = await setupOutbox(db());
    const slot = await failingRun([...setup.args, '--slot', 'no_such_slot']);
    expect(slot).toMatchObject({ code: 1, code_: 'PG_SLOT_MISSING' });
    expect(slot.fix).toContain("pg_create_logical_replication_slot('no_such_slot', 'pgoutput')");

    // Both missing: the fix creates them in the order that streams every row (a slot created first would not).
    const both = await failingRun([...setup.args, '--slot', 'no_such_slot', '--publication', 'no_such_pub']);
    expect(both).toMatchObject({ code: 1, code_: 'PG_SLOT_MISSING', err: 'replication slot "no_such_slot" does not exist, nor does publication "no_such_pub"' });
    expect(both.fix).toContain(`in that order: CREATE PUBLICATION "no_such_pub" FOR TABLE "public"."outbox" WITH (publish = 'insert', publish_via_partition_root = true);  SELECT pg_create_logical_replication_slot('no_such_slot', 'pgoutput');`);

    // The slot without its publication cannot stream the rows written meanwhile: creating the publication now
    // would pass over them, so the fix is a new slot after it, and republish.
    const publication = await failingRun([...setup.args, '--publication', 'no_such_pub']);
    expect(publication).toMatchObject({ code: 1, code_: 'PG_PUBLICATION_MISSING' });
    expect(publication.fix).toContain(`drop the slot (outbox-relay slot drop --slot ${setup.slot}), run outbox-relay setup --slot ${setup.slot} --publication no_such_pub --table public.outbox `);
    expect(publication.fix).toContain('outbox-relay republish --since');

    await db().query('CREATE TABLE other_outbox (LIKE outbox INCLUDING ALL)');
    const table = await failingRun([...setup.args, '--table', 'public.other_outbox']);
    expect(table).toMatchObject({ code: 1, code_: 'PG_TABLE_NOT_PUBLISHED' });
    expect(table.fix).toContain(`ALTER PUBLICATION "${setup.publication}" ADD TABLE "public"."other_outbox";`);
  });

  it('librdkafka producer properties it does not know, or values it refuses: exit 2 at start, every one named in one error with kafka.producer (not retried as a Kafka outage)', async () => {
    const setup = await setupOutbox(db());
    const relay = startRelay([...setup.args, '--kafka-client', 'rdkafka', '--kafka-producer', 'lingerr.ms=5,queue.buffering.max.kbytes=lots']);
    expect(await relay.exited).toBe(2);
    const stderr = relay.stderr.join('\n');
    expect(stderr).toMatch(/^outbox-relay: CONFIG_INVALID: 2 settings are invalid:/);
    expect(stderr).toContain('librdkafka refused a producer property: No such configuration property: "lingerr.ms"');
    expect(stderr).toContain('librdkafka refused a producer property: Invalid value for configuration property "queue.buffering.max.kbytes"');
    expect(stderr).toContain('--kafka-producer');
  });

  it('a role without the REPLICATION attribute', async () => {
    const setup = await setupOutbox(db());
    const role = uniqueName('norepl');
    await db().query(`CREATE ROLE ${role} LOGIN`);
    const url = new URL(db().url);
    url.username = role;
    const args = setup.args.map((a) => (a === db().url ? url.toString() : a));
    const result = await failingRun(args);
    expect(result).toMatchObject({ code: 1, code_: 'PG_NO_REPLICATION_PRIVILEGE' });
    expect(result.fix).toContain(`ALTER ROLE "${role}" WITH REPLICATION;`);
  });

  describe.skipIf(!stack().owned.postgres)('on a server with wal_level=replica', () => {
    const replica = useOwnServer(new PostgresServer({ name: uniqueName('replica'), settings: { wal_level: 'replica' } }));

    it('says to set wal_level=logical and restart', async () => {
      const target = await createDatabase('walreplica', replica.url());
      try {
        const result = await failingRun([
          'run', '--postgres-url', target.url, '--kafka-brokers', stack().brokers.join(','),
        ]);
        expect(result).toMatchObject({ code: 1, code_: 'PG_WAL_LEVEL' });
        expect(result.fix).toContain('ALTER SYSTEM SET wal_level = logical');
      } finally {
        await target.close();
      }
    });
  });
});

describe('relay: the outbox table taken out of the publication while the relay streams', () => {
  const db = useFreshDatabase('unpublished');
  afterEach(killAllRelays);

  it('exits 1 with PG_TABLE_NOT_PUBLISHED at the next check, naming the republish of the rows written since and the row filter the table had; followed as printed, every event the filter passes arrives, and none it kept out', async () => {
    const setup = await setupOutbox(db());
    // A row filter (PostgreSQL 15+): the catalog loses it with the table, so only the relay can give it back.
    await db().query(`ALTER PUBLICATION ${setup.publication} SET TABLE outbox WHERE (aggregate_id <> 'agg-1')`);
    const passes = (events: Inserted[]) => events.filter((e) => e.aggregateId !== 'agg-1');
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    const before = await insertEvents(db(), 3);
    expect(await readTopic(setup.topic, { expected: passes(before).length, settleMs: 0 })).toHaveLength(passes(before).length);
    await waitForConfirmedAll(db(), setup.slot);

    // A migration takes the table out of the publication: pgoutput sends none of its rows from then on, and says nothing.
    await db().query(`ALTER PUBLICATION ${setup.publication} DROP TABLE outbox`);
    const unpublished = await insertEvents(db(), 4);
    expect(await relay.exitCode(30_000), relay.dump()).toBe(1);
    const errors = relay.logs.filter((l) => l.level === 'error');
    expect(errors, relay.dump()).toEqual([expect.objectContaining({ msg: 'giving up', code: 'PG_TABLE_NOT_PUBLISHED' })]);
    expect(String(errors[0]!.err)).toMatch(new RegExp(`^table public\\.outbox is not in publication "${setup.publication}": found while streaming; the tables were published at \\S+, and the rows written since were not streamed$`));
    const fix = String(errors[0]!.fix);
    // Added back without its filter, the table would stream (and republish re-send) the rows the filter kept out.
    const add = `ALTER PUBLICATION "${setup.publication}" ADD TABLE "public"."outbox" WHERE ((aggregate_id <> 'agg-1'::text));`;
    expect(fix).toContain(add);
    expect(fix).not.toContain('not known');
    const since = /outbox-relay republish --since (\S+)/.exec(fix)?.[1];
    expect(since, fix).toBeDefined();
    expect(Date.parse(since!)).toBeLessThanOrEqual(Date.parse(String(errors[0]!.publishedAt)) - 60_000);

    // The fix as printed. Published again, the table's rows stream again, but not those written while it was not.
    await db().query(add);
    const restarted = startRelay(setup.args);
    await restarted.waitForMessage('streaming from PostgreSQL');
    const after = await insertEvents(db(), 2);
    const streamed = await readTopic(setup.topic, { expected: passes([...before, ...after]).length, settleMs: 1000 });
    expect(streamed.map((r) => r.key)).toEqual(passes([...before, ...after]).map((e) => e.id));
    // With the relay's publication, whose row filter republish applies as the relay does.
    const republished = await runCli(['republish', '--postgres-url', db().url, '--publication', setup.publication, '--topic', setup.topic, '--kafka-brokers', stack().brokers.join(','), '--since', since!]);
    expect(republished.code, republished.stdout + republished.stderr).toBe(0);
    // Every row since the printed time that the filter passes again, the unpublished ones among them.
    const all = passes([...before, ...unpublished, ...after]);
    const records = await readTopic(setup.topic, { expected: passes([...before, ...after]).length + all.length, settleMs: 500 });
    expect(new Set(records.map((r) => r.key))).toEqual(new Set(all.map((e) => e.id)));
    restarted.signal('SIGTERM');
    expect(await restarted.exitCode(), restarted.dump()).toBe(0);
  });
});
