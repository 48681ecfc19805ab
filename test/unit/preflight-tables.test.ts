import { describe, expect, it } from 'vitest';
import { preflight, type PreflightQueries } from '../../src/source/preflight.js';
import { SeenPublication } from '../../src/source/seen-publication.js';
import { missingSlotDelivered } from '../../src/source/slot-lost.js';
import { RelayError } from '../../src/errors.js';
import { republishScope } from '../../src/source/republish-command.js';
import { load, refusal } from '../support/config-load.js';
import { printedSettings } from '../support/printed-command.js';

/** PostgreSQL's answers to the pre-flight's queries: a logical server, a free pgoutput slot, an INSERT publication. */
const COLUMNS = ['id', 'event_type', 'aggregate_type', 'aggregate_id', 'payload', 'headers', 'created_at'];

/** How the publication lists a table (PostgreSQL 15+): its own column list and row filter, none where not given. */
type Listed = Record<string, { rowFilter?: string; columns?: string[] }>;

function server(published: string[], partitioned: string[] = [], viaRoot = false, encoding = 'UTF8', asked: string[] = [], listed: Listed = {}): PreflightQueries {
  const rows = (sql: string): object[] => {
    if (sql === 'SHOW wal_level') return [{ wal_level: 'logical' }];
    if (sql.includes('pg_current_wal_lsn()')) return sql.includes("current_setting('server_encoding') AS server_encoding") ? [{ lsn: '0/100', wal_sender_timeout_ms: '60000', server_encoding: encoding, version_num: 150004 }] : [{ lsn: '0/100', wal_sender_timeout_ms: '60000' }];
    if (sql.includes('FROM pg_replication_slots')) {
      return [{ plugin: 'pgoutput', slot_type: 'logical', database: 'app', current_db: 'app', active: false, active_pid: null, confirmed_flush_lsn: '0/80', wal_status: 'reserved' }];
    }
    if (sql.includes('FROM pg_publication WHERE')) return [{ pubinsert: true, pubviaroot: viaRoot }];
    if (sql.includes('pg_try_advisory_lock')) return [{ locked: true, holder: null }];
    // attnames lists every column of a table without a column list of its own, as PostgreSQL 15+ does; prattrs is null then.
    if (sql.includes('FROM pg_publication_tables')) {
      return published.map((name, i) => ({ schemaname: 'public', tablename: name, oid: String(16_384 + i), rowfilter: listed[name]?.rowFilter ?? null, attnames: JSON.stringify(listed[name]?.columns ?? COLUMNS), listed: listed[name]?.columns ? '"1 2"' : null }));
    }
    if (sql.includes("relkind = 'p'")) return partitioned.filter((name) => sql.includes(`'${name}'`)).map((name) => ({ schema: 'public', table: name }));
    // The default mapping's columns, all ordinary (sent-columns.test.ts has the others).
    if (sql.includes('FROM pg_attribute')) return COLUMNS.map((name) => ({ name, generated: '' }));
    if (sql.includes('pubgencols')) return [{ gencols: null, listed: null, attnames: null, rowfilter: null }];
    if (sql.startsWith('SET ')) return [];
    // A promoted standby's: on timeline 2 since 0/90, where it left timeline 1 (history file as the server sends it).
    if (sql === 'IDENTIFY_SYSTEM') return [{ systemid: '7', timeline: 2, xlogpos: '0/100', dbname: 'app' }];
    if (sql === 'TIMELINE_HISTORY 2') return [{ filename: '00000002.history', content: Buffer.from('1\t0/90\tno recovery target specified\n') }];
    throw new Error(`unexpected query: ${sql}`);
  };
  return { query: async <T>(sql: string) => (asked.push(sql), rows(sql) as T[]) };
}

const tables = (...names: string[]) => load({ tables: JSON.stringify(names.map((table) => ({ table }))) }).tables;

async function preflightRefusal(queries: PreflightQueries, names: string[], seen?: SeenPublication) {
  let error: unknown;
  await preflight(queries, 'relay', { publication: 'outbox_pub' }, tables(...names), seen).catch((err: unknown) => (error = err));
  return refusal(() => {
    throw error;
  });
}

/** What an earlier pre-flight of the relay saw: public.outbox with a column list and a row filter, public.orders plain. */
async function seenFiltered(): Promise<SeenPublication> {
  const seen = new SeenPublication();
  const listed: Listed = { outbox: { columns: ['id', 'payload'], rowFilter: "(tenant = 'a'::text)" } };
  await preflight(server(['outbox', 'orders'], [], false, 'UTF8', [], listed), 'relay', { publication: 'outbox_pub' }, tables('outbox', 'orders'), seen);
  return seen;
}

/** How a fix creates again the publication seenFiltered saw, then makes the slot. */
const AS_IT_WAS =
  'create the publication as it was, with the column lists and row filters it had, which setup does not give back (its --row-filter is one filter for every table), or the rows a filter kept out go to Kafka: ' +
  `CREATE PUBLICATION "outbox_pub" FOR TABLE "public"."outbox" ("id", "payload") WHERE ((tenant = 'a'::text)), "public"."orders" WITH (publish = 'insert', publish_via_partition_root = true);  `;

/** `queries` with no rows for the catalog reads that contain one of `gone` (a dropped publication, a dropped slot). */
/** The same server as PostgreSQL `versionNum` (server_version_num), which has failover slots from 17 on. */
function onVersion(queries: PreflightQueries, versionNum: number): PreflightQueries {
  return { query: (async (sql: string) => (await queries.query<object>(sql)).map((row) => ('version_num' in row ? { ...row, version_num: versionNum } : row))) as PreflightQueries['query'] };
}

function without(queries: PreflightQueries, ...gone: string[]): PreflightQueries {
  return { query: (async (sql: string) => (gone.some((g) => sql.includes(g)) ? [] : queries.query(sql))) as PreflightQueries['query'] };
}

describe('pre-flight: the mapped tables the publication does not publish', () => {
  it('are all named in one error, with the one statement that adds them all (before, the first only: a start per table)', async () => {
    const r = await preflightRefusal(server(['outbox']), ['outbox', 'orders', 'payments']);
    expect(r.code).toBe('PG_TABLE_NOT_PUBLISHED');
    expect(r.message).toBe('tables public.orders, public.payments are not in publication "outbox_pub"');
    expect(r.hint).toBe(
      'ALTER PUBLICATION "outbox_pub" ADD TABLE "public"."orders", "public"."payments";  (do the tables exist? check tables (--tables / OUTBOX_RELAY_TABLES)); ' +
        'whether tables public.orders, public.payments had a column list or a row filter in the publication is not known (the relay never found them published): if so, restore them by hand in that statement (ADD TABLE … (<its columns>) WHERE (<its filter>)), or the rows a filter kept out go to Kafka, from the relay and from the republish, and PostgreSQL sends the columns a list kept out; ' +
        'if they were published before, the rows written since they were not are never relayed: re-send them with outbox-relay republish --since <when that began> --publication outbox_pub',
    );
  });

  it('one table: the message and fix as before', async () => {
    const r = await preflightRefusal(server(['outbox']), ['outbox', 'orders']);
    expect(r.message).toBe('table public.orders is not in publication "outbox_pub"');
    expect(r.hint).toBe(
      'ALTER PUBLICATION "outbox_pub" ADD TABLE "public"."orders";  (does the table exist? check --table); ' +
        'whether the table had a column list or a row filter in the publication is not known (the relay never found it published): if so, restore them by hand in that statement (ADD TABLE … (<its columns>) WHERE (<its filter>)), or the rows a filter kept out go to Kafka, from the relay and from the republish, and PostgreSQL sends the columns a list kept out; ' +
        'if they were published before, the rows written since they were not are never relayed: re-send them with outbox-relay republish --since <when that began> --publication outbox_pub',
    );
  });

  it('a table taken out between two sessions is added back with the row filter an earlier pre-flight of the relay found on it (the catalog lost it with the table); one without a filter then, without one', async () => {
    const seen = new SeenPublication();
    await preflight(server(['outbox', 'orders'], [], false, 'UTF8', [], { outbox: { rowFilter: "(aggregate_type <> 'internal'::text)" } }), 'relay', { publication: 'outbox_pub' }, tables('outbox', 'orders'), seen);
    const r = await preflightRefusal(server([]), ['outbox', 'orders'], seen);
    expect(r.code).toBe('PG_TABLE_NOT_PUBLISHED');
    expect(r.hint).toMatch(/^ALTER PUBLICATION "outbox_pub" ADD TABLE "public"."outbox" WHERE \(\(aggregate_type <> 'internal'::text\)\), "public"."orders";  \(/);
    expect(r.hint).not.toContain('row filter');
  });

  it('a table taken out between two sessions is added back with the column list an earlier pre-flight found on it, identifiers quoted, before its row filter; one published with every column (attnames lists them all) without a list', async () => {
    const seen = new SeenPublication();
    const listed: Listed = { outbox: { columns: [...COLUMNS, 'Tenant "A"'], rowFilter: "(aggregate_type <> 'internal'::text)" }, orders: {} };
    await preflight(server(['outbox', 'orders'], [], false, 'UTF8', [], listed), 'relay', { publication: 'outbox_pub' }, tables('outbox', 'orders'), seen);
    const r = await preflightRefusal(server([]), ['outbox', 'orders'], seen);
    expect(r.hint).toMatch(
      /^ALTER PUBLICATION "outbox_pub" ADD TABLE "public"."outbox" \("id", "event_type", "aggregate_type", "aggregate_id", "payload", "headers", "created_at", "Tenant ""A"""\) WHERE \(\(aggregate_type <> 'internal'::text\)\), "public"."orders";  \(/,
    );
    expect(r.hint).not.toContain('column list');
  });

  it("a reconnect's pre-flight that finds the publication dropped creates it again with the column lists and row filters an earlier pre-flight found (setup gives back neither), then setup; without any, setup alone", async () => {
    const seen = await seenFiltered();
    const dropped = (queries: PreflightQueries) => without(queries, 'FROM pg_publication WHERE');
    const r = await preflightRefusal(dropped(server([])), ['outbox', 'orders'], seen);
    expect(r.code).toBe('PG_PUBLICATION_MISSING');
    expect(r.hint).toBe(
      `drop the slot (outbox-relay slot drop --slot relay), ${AS_IT_WAS}` +
        'then run outbox-relay setup --slot relay --publication outbox_pub (with --failover-slot if it was a PostgreSQL 17 failover slot) (the slot; it keeps that publication), start the relay, then re-send the rows written since the slot was created or the publication dropped: outbox-relay republish --since <that time> --publication outbox_pub',
    );
    const plain = await preflightRefusal(dropped(server([])), ['outbox', 'orders']);
    expect(plain.hint).toMatch(/^drop the slot \(outbox-relay slot drop --slot relay\), run outbox-relay setup .*\(the publication, then the slot\), start the relay/);
  });

  it("a pre-flight that finds the slot and the publication both gone creates the publication with the column lists and row filters an earlier pre-flight found, then the slot; one of a relay that never saw them, as before (setup alone, or the plain statements)", async () => {
    const seen = await seenFiltered();
    const gone = (queries: PreflightQueries) => without(queries, 'FROM pg_publication WHERE', 'FROM pg_replication_slots');
    const r = await preflightRefusal(gone(server([])), ['outbox', 'orders'], seen);
    expect(r.code).toBe('PG_SLOT_MISSING');
    expect(r.message).toBe('replication slot "relay" does not exist, nor does publication "outbox_pub"');
    // PostgreSQL 15 has no failover slots: neither the flag nor the statement's failover variant.
    expect(r.hint).toBe(AS_IT_WAS + "then run outbox-relay setup --slot relay --publication outbox_pub (the slot; it keeps that publication), or SELECT pg_create_logical_replication_slot('relay', 'pgoutput');");
    // With a checkpoint the relay gives the lost slot's runbook instead: its step 2 creates the publication the same way.
    const thrown = await preflight(gone(server([])), 'relay', { publication: 'outbox_pub' }, tables('outbox', 'orders'), seen).catch((err: unknown) => err);
    expect(thrown).toBeInstanceOf(RelayError);
    const delivered = missingSlotDelivered(thrown as RelayError, 'ckpt', { lsn: 0x10n, commitTimeMs: undefined }, { slot: 'relay', publication: 'outbox_pub' }, { publication: 'outbox_pub', tables: tables('outbox', 'orders'), seen });
    expect(delivered.hint).toContain(`2) ${AS_IT_WAS}then run outbox-relay setup --slot relay --publication outbox_pub (with --failover-slot if it was a PostgreSQL 17 failover slot) (the slot; it keeps that publication); 3) start the relay;`);
    const plain = await preflightRefusal(gone(server([])), ['outbox', 'orders']);
    expect(plain.hint).toBe(
      'run outbox-relay setup --slot relay --publication outbox_pub, which creates the publication, then the slot; or, in that order: ' +
        `CREATE PUBLICATION "outbox_pub" FOR TABLE "public"."outbox", "public"."orders" WITH (publish = 'insert', publish_via_partition_root = true);  SELECT pg_create_logical_replication_slot('relay', 'pgoutput');`,
    );
  });

  it("every setup and slot drop the missing-slot and dropped-publication fixes print, read as its command line where the environment names other ones, gives the relay's slot, publication and tables (setup builds the publication from them)", async () => {
    // Another shell's settings: another relay's slot and publication, and single-table settings of its own.
    const elsewhere = { OUTBOX_RELAY_SLOT: 'other_slot', OUTBOX_RELAY_PUBLICATION: 'other_pub', OUTBOX_RELAY_MAPPING_KEY: 'id', OUTBOX_RELAY_TOPIC: 'elsewhere' };
    const relays = [
      load({ slot: 'relay', publication: 'outbox_pub', tables: JSON.stringify([{ table: 'outbox', topic: 'orders.${aggregate_type}', mapping: { key: 'aggregate_id' } }, { table: 'orders' }]) }),
      load({ slot: 'relay', publication: 'outbox_pub', table: 'outbox', 'mapping.key': 'aggregate_id', topic: 'orders.${aggregate_type}' }),
    ];
    const seen = await seenFiltered();
    const slotGone = without(server(['outbox', 'orders']), 'FROM pg_replication_slots');
    const bothGone = without(server([]), 'FROM pg_replication_slots', 'FROM pg_publication WHERE');
    const dropped = without(server([]), 'FROM pg_publication WHERE');
    for (const relay of relays) {
      const hints: string[] = [];
      for (const [queries, saw] of [[slotGone, undefined], [bothGone, undefined], [bothGone, seen], [dropped, undefined], [dropped, seen]] as const) {
        const thrown = (await preflight(queries, relay.slot, republishScope(relay), relay.tables, saw).catch((err: unknown) => err)) as RelayError;
        hints.push(thrown.hint!);
        if (thrown.code === 'PG_SLOT_MISSING') hints.push(missingSlotDelivered(thrown, 'ckpt', { lsn: 0x10n, commitTimeMs: undefined }, { slot: relay.slot, ...republishScope(relay) }, { publication: relay.publication, tables: relay.tables, seen: saw ?? new SeenPublication() }).hint!);
      }
      for (const hint of hints) {
        const setups = printedSettings(hint, 'setup');
        expect(setups, hint).toHaveLength(1);
        const setup = load(setups[0]!, elsewhere);
        expect([setup.slot, setup.publication]).toEqual(['relay', 'outbox_pub']);
        expect(setup.tables).toEqual(relay.tables);
      }
      const drops = hints.flatMap((hint) => printedSettings(hint, 'slot drop'));
      expect(drops).toHaveLength(2);
      for (const drop of drops) expect(load(drop, elsewhere).slot).toBe('relay');
    }
  });

  it('on PostgreSQL 17, a missing slot\'s fixes name --failover-slot for setup (which takes it from its command line only) and the statement that creates a failover slot; on 16, neither', async () => {
    const failoverSql = "(or, if it was a failover slot: SELECT pg_create_logical_replication_slot('relay', 'pgoutput', failover => true);)";
    const slotGone = (versionNum: number) => onVersion(without(server(['outbox']), 'FROM pg_replication_slots'), versionNum);
    expect((await preflightRefusal(slotGone(170002), ['outbox'])).hint).toBe(
      `run outbox-relay setup --slot relay --publication outbox_pub (with --failover-slot if it was a PostgreSQL 17 failover slot), or SELECT pg_create_logical_replication_slot('relay', 'pgoutput'); ${failoverSql}`,
    );
    expect((await preflightRefusal(slotGone(160008), ['outbox'])).hint).toBe("run outbox-relay setup --slot relay --publication outbox_pub, or SELECT pg_create_logical_replication_slot('relay', 'pgoutput');");
    const bothGone = onVersion(without(server([]), 'FROM pg_replication_slots', 'FROM pg_publication WHERE'), 180001);
    expect((await preflightRefusal(bothGone, ['outbox'])).hint).toBe(
      'run outbox-relay setup --slot relay --publication outbox_pub (with --failover-slot if it was a PostgreSQL 17 failover slot), which creates the publication, then the slot; or, in that order: ' +
        `CREATE PUBLICATION "outbox_pub" FOR TABLE "public"."outbox" WITH (publish = 'insert', publish_via_partition_root = true);  SELECT pg_create_logical_replication_slot('relay', 'pgoutput'); ${failoverSql}`,
    );
    const seen = await seenFiltered();
    const seenGone = onVersion(without(server([]), 'FROM pg_replication_slots', 'FROM pg_publication WHERE'), 170002);
    expect((await preflightRefusal(seenGone, ['outbox', 'orders'], seen)).hint).toBe(
      `${AS_IT_WAS}then run outbox-relay setup --slot relay --publication outbox_pub (with --failover-slot if it was a PostgreSQL 17 failover slot) (the slot; it keeps that publication), or SELECT pg_create_logical_replication_slot('relay', 'pgoutput'); ${failoverSql}`,
    );
  });

  it('partitioned tables published through their partitions are named in the same error, with their own fix', async () => {
    const r = await preflightRefusal(server([], ['orders', 'payments']), ['orders', 'payments', 'outbox']);
    expect(r.code).toBe('PG_TABLE_NOT_PUBLISHED');
    expect(r.message).toBe(
      'table public.outbox is not in publication "outbox_pub"; tables public.orders, public.payments are partitioned, and publication "outbox_pub" publishes their partitions under their own names, not their rows under the tables\'',
    );
    expect(r.hint).toContain('ALTER PUBLICATION "outbox_pub" ADD TABLE "public"."outbox";');
    expect(r.hint).toContain('ALTER PUBLICATION "outbox_pub" SET (publish_via_partition_root = true);');
  });

  it('every table published: the slot state, each table by its OID', async () => {
    const state = await preflight(server(['outbox', 'orders']), 'relay', { publication: 'outbox_pub' }, tables('outbox', 'orders'));
    expect([...state.tablesByOid].map(([oid, t]) => [oid, t.table])).toEqual([
      [16_384, 'outbox'],
      [16_385, 'orders'],
    ]);
    expect(state.history).toEqual({ timeline: 2, switchpoints: new Map([[1, 0x90n]]) });
  });
});

describe('pre-flight: the database encoding', () => {
  it('a SQL_ASCII database, which stores text bytes unchecked, sends them as stored (client_encoding SQL_ASCII) and has the row mappers check the columns they read for UTF-8; others do neither', async () => {
    for (const [encoding, unchecked] of [['SQL_ASCII', true], ['UTF8', false], ['LATIN1', false]] as const) {
      const asked: string[] = [];
      const state = await preflight(server(['outbox'], [], false, encoding, asked), 'relay', { publication: 'outbox_pub' }, tables('outbox'));
      expect(state.utf8Unchecked, encoding).toBe(unchecked);
      // A UTF8 client on a SQL_ASCII server: the server refuses to send a value that is not UTF-8, and the session ends at that WAL on every reconnect.
      expect(asked.filter((sql) => sql.startsWith('SET ')), encoding).toEqual(unchecked ? ["SET client_encoding = 'SQL_ASCII'"] : []);
    }
  });
});
