import { describe, expect, it } from 'vitest';
import type { CatalogQuery } from '../../src/source/publication-check.js';
import { unsentColumns } from '../../src/source/sent-columns.js';
import { load } from '../support/config-load.js';

const DEFAULT_COLUMNS = ['id', 'event_type', 'aggregate_type', 'aggregate_id', 'payload', 'headers', 'created_at'];

/** The catalog's answers: the table's columns (name → attgenerated) and the publication's row for it. */
function catalog(columns: Record<string, string>, published?: { gencols?: string | null; list?: string[]; rowfilter?: string }): CatalogQuery {
  return async <R>(sql: string) => {
    if (sql.includes('FROM pg_attribute')) return Object.entries(columns).map(([name, generated]) => ({ name, generated })) as R[];
    if (sql.includes('pubgencols')) {
      if (!published) throw new Error('no publication was named');
      return [{ gencols: published.gencols ?? null, listed: published.list ? '[1]' : null, attnames: published.list ? JSON.stringify(published.list) : null, rowfilter: published.rowfilter ?? null }] as R[];
    }
    throw new Error(`unexpected query: ${sql}`);
  };
}

const plain = (names: string[], generated: Record<string, string> = {}) => Object.fromEntries(names.map((n) => [n, generated[n] ?? '']));

describe('mapped columns PostgreSQL will not send', () => {
  it('none where the table has every mapped column, ordinary, and the publication no column list', async () => {
    expect(await unsentColumns(catalog(plain(DEFAULT_COLUMNS), {}), load({}).tables[0]!, 'pub')).toEqual([]);
  });

  it('a column the table lacks: named with its setting and the columns no setting maps; a topic placeholder with the topic setting', async () => {
    const mapping = load({ 'mapping.payload': 'body', topic: 'outbox.${tenant}' }).tables[0]!;
    const unsent = await unsentColumns(catalog(plain(DEFAULT_COLUMNS), {}), mapping, 'pub');
    expect(unsent).toEqual([
      { column: 'body', setting: 'mapping.payload', table: 'public.outbox', why: 'public.outbox has no column "body"', fix: 'set mapping.payload to a column of public.outbox (columns no setting maps: payload, created_at), or add the column' },
      { column: 'tenant', setting: '${tenant} in topic', table: 'public.outbox', why: 'public.outbox has no column "tenant"', fix: 'write a column of public.outbox in place of ${tenant} in topic (columns no setting maps: payload, created_at), or add the column' },
    ]);
  });

  it("a column list that leaves a mapped column out: the fix drops and adds the table in one transaction with the column in its list, its other columns and row filter kept (SET TABLE would unpublish the publication's other tables)", async () => {
    const unsent = await unsentColumns(catalog(plain(DEFAULT_COLUMNS), { list: ['id', 'event_type', 'aggregate_type', 'aggregate_id', 'payload'], rowfilter: "(aggregate_type <> 'internal'::text)" }), load({}).tables[0]!, 'pub');
    expect(unsent).toEqual([
      {
        column: 'headers',
        setting: 'mapping.headers',
        table: 'public.outbox',
        why: 'publication "pub" publishes only columns id, event_type, aggregate_type, aggregate_id, payload of public.outbox',
        fix: 'add the missing columns to its column list, in one transaction (a row written while the table is out of the publication is never streamed): BEGIN; ALTER PUBLICATION "pub" DROP TABLE "public"."outbox"; ALTER PUBLICATION "pub" ADD TABLE "public"."outbox" ("id", "event_type", "aggregate_type", "aggregate_id", "payload", "headers") WHERE ((aggregate_type <> \'internal\'::text)); COMMIT;',
      },
    ]);
  });

  it('a generated column: never sent before PostgreSQL 18, whatever the column list says (pg_publication_tables lists it there all the same)', async () => {
    const columns = plain(DEFAULT_COLUMNS, { event_type: 's' });
    const [unsent] = await unsentColumns(catalog(columns, { gencols: null }), load({}).tables[0]!, 'pub');
    expect(unsent).toMatchObject({ column: 'event_type', setting: 'mapping.type', why: '"event_type" is a generated column of public.outbox, which pgoutput does not send before PostgreSQL 18', fix: 'map a column the writer fills (in the same INSERT)' });
    // A publication setup is to create has no publish_generated_columns either.
    expect((await unsentColumns(catalog(columns), load({}).tables[0]!, undefined))[0]!.why).toBe('"event_type" is a generated column of public.outbox, which a new publication does not send (from PostgreSQL 18 on, only with publish_generated_columns = stored)');
  });

  it('PostgreSQL 18: a stored generated column is sent with publish_generated_columns = stored or in the column list; a virtual one never', async () => {
    const mapping = load({}).tables[0]!;
    const stored = plain(DEFAULT_COLUMNS, { event_type: 's' });
    expect(await unsentColumns(catalog(stored, { gencols: 's' }), mapping, 'pub')).toEqual([]);
    expect(await unsentColumns(catalog(stored, { gencols: 'n', list: DEFAULT_COLUMNS }), mapping, 'pub')).toEqual([]);
    expect(await unsentColumns(catalog(stored, { gencols: 'n' }), mapping, 'pub')).toMatchObject([
      { column: 'event_type', why: '"event_type" is a generated column of public.outbox, which publication "pub" does not send (publish_generated_columns is not stored)', fix: 'ALTER PUBLICATION "pub" SET (publish_generated_columns = stored);  or map a column the writer fills (in the same INSERT)' },
    ]);
    expect(await unsentColumns(catalog(plain(DEFAULT_COLUMNS, { event_type: 'v' }), { gencols: 's' }), mapping, 'pub')).toMatchObject([{ column: 'event_type', why: '"event_type" is a generated column of public.outbox, which pgoutput never sends (virtual)' }]);
  });

  it('no such table: nothing here (the table check says so)', async () => {
    expect(await unsentColumns(catalog({}), load({}).tables[0]!, 'pub')).toEqual([]);
  });
});
