import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { RelayError } from '../../src/errors.js';
import { PublicationWatch } from '../../src/source/publication-watch.js';
import { SeenPublication } from '../../src/source/seen-publication.js';
import { load } from '../support/config-load.js';
import { printedSettings } from '../support/printed-command.js';

/** PostgreSQL's catalog as the watch's queries read it, changed by the test between checks. */
interface Catalog {
  publication: { pubinsert: boolean; pubviaroot: boolean } | undefined;
  tables: string[];
  /** pg_publication_tables.rowfilter of every table (PostgreSQL 15+); none when undefined. */
  rowFilter?: string;
  /** The column list of every table (PostgreSQL 15+); none when undefined (attnames then lists every column). */
  columns?: string[];
  down?: boolean;
  /** pg_stat_activity: the oldest open transaction's start, and whether some session's start was hidden. */
  open?: { oldest: Date | null; hidden: boolean };
}

function watch(catalog: Catalog, streamingSince: () => number | undefined, seen = new SeenPublication()) {
  const refused: RelayError[] = [];
  let queries = 0;
  const connection = {
    query: async (sql: string) => {
      queries++;
      if (catalog.down) throw new Error('connect ECONNREFUSED');
      if (sql.includes('FROM pg_stat_activity')) return [catalog.open ?? { oldest: null, hidden: false }];
      if (sql.includes('FROM pg_publication WHERE')) return catalog.publication ? [catalog.publication] : [];
      if (sql.includes('FROM pg_publication_tables')) {
        const attnames = JSON.stringify(catalog.columns ?? ['id', 'payload', 'created_at']);
        return catalog.tables.map((tablename, i) => ({ schemaname: 'public', tablename, oid: String(16_384 + i), rowfilter: catalog.rowFilter ?? null, attnames, listed: catalog.columns ? '"1 2"' : null }));
      }
      throw new Error(`unexpected query: ${sql}`);
    },
    release: async () => undefined,
  };
  const tables = load({ tables: JSON.stringify([{ table: 'outbox' }]) }).tables;
  const w = new PublicationWatch({}, { slot: 'relay_slot', publication: 'outbox_pub' }, tables, seen, 10_000, streamingSince, (e) => refused.push(e), pino({ level: 'silent' }));
  const check = () => (w as unknown as { check(c: unknown): Promise<void> }).check(connection);
  return { refused, check, queries: () => queries };
}

describe('PublicationWatch: the mapped tables still published while the relay streams', () => {
  it('checks only while a session streams; a table taken out is refused with the republish from the later of the session\'s pre-flight and the last check that found it published', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const catalog: Catalog = { publication: { pubinsert: true, pubviaroot: true }, tables: ['outbox'] };
      let since: number | undefined;
      const w = watch(catalog, () => since);
      await w.check();
      expect(w.queries()).toBe(0);

      since = Date.parse('2026-12-05T08:00:00.000Z');
      vi.setSystemTime(Date.parse('2026-12-05T08:00:10.000Z'));
      await w.check();
      expect(w.refused).toEqual([]);
      vi.setSystemTime(Date.parse('2026-12-05T08:00:20.000Z'));
      catalog.tables = [];
      await w.check();
      expect(w.refused).toHaveLength(1);
      expect(w.refused[0]).toMatchObject({
        code: 'PG_TABLE_NOT_PUBLISHED',
        message: 'table public.outbox is not in publication "outbox_pub": found while streaming; the tables were published at 2026-12-05T08:00:10.000Z, and the rows written since were not streamed',
        details: { publishedAt: '2026-12-05T08:00:10.000Z' },
      });
      expect(w.refused[0]!.hint).toContain('ALTER PUBLICATION "outbox_pub" ADD TABLE "public"."outbox";');
      // Found published, without a row filter: nothing to restore.
      expect(w.refused[0]!.hint).not.toContain('row filter');
      // With the relay's publication, whose row filter republish applies: not its default's (outbox_relay).
      expect(w.refused[0]!.hint).toContain('the rows written since 2026-12-05T07:59:10.000Z are never relayed: once published again and the relay runs, re-send them with outbox-relay republish --since 2026-12-05T07:59:10.000Z --publication outbox_pub (consumers dedupe on the id header)');
    } finally {
      vi.useRealTimers();
    }
  });

  it('a publication dropped or set to publish no INSERTs is refused too, each with its fix; a check that cannot run refuses nothing', async () => {
    const since = Date.parse('2026-12-05T08:00:00.000Z');
    const catalog: Catalog = { publication: { pubinsert: true, pubviaroot: true }, tables: ['outbox'], down: true };
    const w = watch(catalog, () => since);
    await w.check();
    expect(w.refused).toEqual([]);
    catalog.down = false;
    catalog.publication = { pubinsert: false, pubviaroot: true };
    await w.check();
    catalog.publication = undefined;
    await w.check();
    expect(w.refused.map((e) => e.code)).toEqual(['PG_PUBLICATION_MISSING', 'PG_PUBLICATION_MISSING']);
    expect(w.refused[0]!.hint).toBe(`ALTER PUBLICATION "outbox_pub" SET (publish = 'insert'); Then start the relay, and re-send what was written since: outbox-relay republish --since 2026-12-05T07:59:00.000Z --publication outbox_pub (consumers dedupe on the id header); transactions open at the session's start that began more than a minute before it are not covered: take an earlier --since if one ran long`);
    expect(w.refused[1]!.message).toMatch(/^publication "outbox_pub" does not exist: found while streaming/);
    expect(w.refused[1]!.hint).toMatch(/^drop the slot \(outbox-relay slot drop --slot relay_slot\), run outbox-relay setup .*, then re-send what was written since: outbox-relay republish --since 2026-12-05T07:59:00.000Z --publication outbox_pub \(consumers dedupe on the id header\)/);
    // Pasted where the environment names another relay's slot and publication, its setup and slot drop still name the relay's.
    const elsewhere = { OUTBOX_RELAY_SLOT: 'other_slot', OUTBOX_RELAY_PUBLICATION: 'other_pub' };
    const setup = load(printedSettings(w.refused[1]!.hint!, 'setup')[0]!, elsewhere);
    expect([setup.slot, setup.publication]).toEqual(['relay_slot', 'outbox_pub']);
    expect(load(printedSettings(w.refused[1]!.hint!, 'slot drop')[0]!, elsewhere).slot).toBe('relay_slot');
  });
  it('the republish also covers a transaction that was open when the tables were last found published (its rows carry its start), and says when the role could not see every session', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      // Reproduced on PostgreSQL 15.20: a transaction inserted, the table left the publication, it inserted again and
      // committed; its second row was never streamed, and its created_at is the transaction's start.
      const catalog: Catalog = { publication: { pubinsert: true, pubviaroot: true }, tables: ['outbox'], open: { oldest: new Date('2026-12-05T07:50:00.000Z'), hidden: false } };
      const w = watch(catalog, () => Date.parse('2026-12-05T08:00:00.000Z'));
      vi.setSystemTime(Date.parse('2026-12-05T08:00:10.000Z'));
      await w.check();
      catalog.tables = [];
      vi.setSystemTime(Date.parse('2026-12-05T08:00:20.000Z'));
      await w.check();
      expect(w.refused[0]!.hint).toContain('re-send them with outbox-relay republish --since 2026-12-05T07:49:00.000Z');
      expect(w.refused[0]!.hint).not.toContain('not covered');

      const hidden: Catalog = { publication: { pubinsert: true, pubviaroot: true }, tables: ['outbox'], open: { oldest: null, hidden: true } };
      const v = watch(hidden, () => Date.parse('2026-12-05T08:00:00.000Z'));
      vi.setSystemTime(Date.parse('2026-12-05T08:00:10.000Z'));
      await v.check();
      hidden.tables = [];
      await v.check();
      expect(v.refused[0]!.hint).toContain('republish --since 2026-12-05T07:59:10.000Z');
      expect(v.refused[0]!.hint).toContain('whose start the relay\'s role could not see (other roles\' sessions: pg_read_all_stats lets it) are not covered');
    } finally {
      vi.useRealTimers();
    }
  });

  it('a table taken out is added back with the row filter it had when last found published, by the watch or by the pre-flight; one never seen published says its filter is not known', async () => {
    const since = Date.parse('2026-12-05T08:00:00.000Z');
    const filtered: Catalog = { publication: { pubinsert: true, pubviaroot: true }, tables: ['outbox'], rowFilter: "((aggregate_type)::text <> 'internal'::text)" };
    const w = watch(filtered, () => since);
    await w.check();
    filtered.tables = [];
    await w.check();
    expect(w.refused[0]!.hint).toMatch(/^ALTER PUBLICATION "outbox_pub" ADD TABLE "public"."outbox" WHERE \(\(\(aggregate_type\)::text <> 'internal'::text\)\);  \(/);
    expect(w.refused[0]!.hint).not.toContain('not known');

    // Taken out before the watch's first check: the session's pre-flight saw the filter (the relay's SeenPublication).
    const seen = new SeenPublication();
    seen.saw({ schema: 'public', table: 'outbox' }, { columns: null, rowFilter: "(tenant = 'a'::text)" });
    const v = watch({ publication: { pubinsert: true, pubviaroot: true }, tables: [] }, () => since, seen);
    await v.check();
    expect(v.refused[0]!.hint).toContain(`ALTER PUBLICATION "outbox_pub" ADD TABLE "public"."outbox" WHERE ((tenant = 'a'::text));`);

    const u = watch({ publication: { pubinsert: true, pubviaroot: true }, tables: [] }, () => since);
    await u.check();
    expect(u.refused[0]!.hint).toContain('ALTER PUBLICATION "outbox_pub" ADD TABLE "public"."outbox";');
    expect(u.refused[0]!.hint).toContain('whether the table had a column list or a row filter in the publication is not known (the relay never found it published): if so, restore them by hand');
  });

  it('a table taken out is added back with the column list it had when last found published (identifiers quoted), and its row filter after it', async () => {
    const since = Date.parse('2026-12-05T08:00:00.000Z');
    const listed: Catalog = { publication: { pubinsert: true, pubviaroot: true }, tables: ['outbox'], columns: ['id', 'payload', 'created_at', 'event type'], rowFilter: "(tenant = 'a'::text)" };
    const w = watch(listed, () => since);
    await w.check();
    listed.tables = [];
    await w.check();
    expect(w.refused[0]!.hint).toContain(`ALTER PUBLICATION "outbox_pub" ADD TABLE "public"."outbox" ("id", "payload", "created_at", "event type") WHERE ((tenant = 'a'::text));  (`);
  });

  it('a dropped publication: the fix creates it again with the row filters it had on the tables, which setup does not give back, then setup', async () => {
    const since = Date.parse('2026-12-05T08:00:00.000Z');
    const catalog: Catalog = { publication: { pubinsert: true, pubviaroot: true }, tables: ['outbox'], rowFilter: "(tenant = 'a'::text)" };
    const w = watch(catalog, () => since);
    await w.check();
    catalog.publication = undefined;
    await w.check();
    expect(w.refused[0]!.code).toBe('PG_PUBLICATION_MISSING');
    // As a reconnect's pre-flight and the stream's error say it (newSlotThenRepublish), with the re-send from the check.
    expect(w.refused[0]!.hint).toMatch(
      new RegExp(
        `^drop the slot \\(outbox-relay slot drop --slot relay_slot\\), create the publication as it was, .*: CREATE PUBLICATION "outbox_pub" FOR TABLE "public"."outbox" WHERE \\(\\(tenant = 'a'::text\\)\\) WITH \\(publish = 'insert', publish_via_partition_root = true\\);  then run outbox-relay setup .*\\(the slot; it keeps that publication\\), start the relay, then re-send what was written since: outbox-relay republish --since \\S+ --publication outbox_pub \\(consumers dedupe`,
      ),
    );
  });
});
