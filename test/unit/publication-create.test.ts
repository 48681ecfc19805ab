import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** The publication the fake server has: public.outbox, with this row filter (PostgreSQL's text) and these actions. */
let existing: { rowFilter: string | null; update: boolean; other?: boolean };
vi.mock('../../src/ops/connection.js', async (original) => {
  const real = await original<typeof import('../../src/ops/connection.js')>();
  const query = (sql: string | { text: string }) => {
    const text = typeof sql === 'string' ? sql : sql.text;
    if (text.includes('FROM pg_publication WHERE')) return { rows: [{ owner: 'admin', puballtables: false, pubviaroot: true, pubinsert: true, pubupdate: existing.update, pubdelete: false, pubtruncate: false }] };
    if (text.includes('FROM pg_publication_tables')) return { rows: [{ schemaname: 'public', tablename: 'outbox', rowfilter: existing.rowFilter }, ...(existing.other ? [{ schemaname: 'billing', tablename: 'invoices', rowfilter: null }] : [])] };
    // The row filter as PostgreSQL deparses it (checks.ts deparseRowFilter).
    if (text.includes('pg_get_expr')) return { rows: [{ filter: "(aggregate_type <> 'internal'::text)" }] };
    // A primary: on a standby the command is refused before it looks at anything (ops/primary.ts).
    if (text.includes('pg_is_in_recovery')) return { rows: [{ in_recovery: false }] };
    return { rows: [] };
  };
  const client = { query: (sql: string | { text: string }) => Promise.resolve(query(sql)) } as unknown as pg.Client;
  return { ...real, withClient: (_config: never, _what: never, work: (c: pg.Client) => Promise<unknown>) => work(client) };
});
const { publicationCommand } = await import('../../src/cli/commands/publication.js');

async function create(...args: string[]): Promise<{ code: number | undefined; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => out.push(String(chunk)) > 0);
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => err.push(String(chunk)) > 0);
  await publicationCommand().parseAsync(['create', '--postgres-url', 'postgres://admin@127.0.0.1/app', ...args], { from: 'user' });
  vi.restoreAllMocks();
  return { code: process.exitCode as number | undefined, stdout: out.join(''), stderr: err.join('') };
}

describe('publication create of a publication that exists', () => {
  beforeEach(() => {
    process.exitCode = undefined;
  });
  afterEach(() => {
    process.exitCode = undefined;
  });

  it('without the --row-filter asked for, or publishing more than inserts: exit 1 with setup\'s failed checks and their ALTER PUBLICATION', async () => {
    existing = { rowFilter: null, update: true };
    const result = await create('--row-filter', "aggregate_type <> 'internal'");
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`fix: ALTER PUBLICATION "outbox_relay" SET (publish = 'insert');`);
    expect(result.stdout).toContain(`fix: as the table owner: ALTER PUBLICATION "outbox_relay" SET TABLE "public"."outbox" WHERE (aggregate_type <> 'internal');`);
    expect(result.stderr.split('\n').filter((l) => l.startsWith('outbox-relay: '))).toEqual([
      'outbox-relay: PG_SETUP_CHECKS_FAILED: 2 check(s) failed: publication outbox_relay, row filter public.outbox; publication "outbox_relay" exists, and differs from the one asked for',
    ]);
  });

  it("in a publication with another table too: the fix drops and adds the outbox table in one transaction (SET TABLE, the fix before, took the other table out, whose rows written meanwhile never streamed)", async () => {
    existing = { rowFilter: null, update: false, other: true };
    const result = await create('--row-filter', "aggregate_type <> 'internal'");
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      `fix: as the table owner: BEGIN; ALTER PUBLICATION "outbox_relay" DROP TABLE "public"."outbox"; ALTER PUBLICATION "outbox_relay" ADD TABLE "public"."outbox" WHERE (aggregate_type <> 'internal'); COMMIT;`,
    );
  });

  it('the one asked for: "already exists", exit 0', async () => {
    existing = { rowFilter: "(aggregate_type <> 'internal'::text)", update: false };
    const result = await create('--row-filter', "aggregate_type <> 'internal'");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('publication "outbox_relay": already exists');
    expect(result.stderr).toBe('');
  });
});
