import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { STANDBY_FIX } from '../../src/ops/pg-refusals.js';
import { setup } from '../../src/ops/setup.js';
import { load } from '../support/config-load.js';

/** A standby (pg_is_in_recovery() true) with no slot and no publication; records the statements run. */
function fakeStandby(): { client: pg.Client; statements: string[] } {
  const statements: string[] = [];
  const query = (sql: string) => {
    statements.push(sql);
    return Promise.resolve({ rows: sql.includes('pg_is_in_recovery') ? [{ in_recovery: true }] : [] });
  };
  return { client: { query } as unknown as pg.Client, statements };
}

const options = { slot: 'outbox_relay', publication: 'outbox_relay', republish: { publication: 'outbox_relay' }, tables: load({}).tables };

describe('setup on a standby (PostgreSQL 16 and later create a slot there when asked)', () => {
  it('refuses before reading or creating anything, with the fix of every standby refusal', async () => {
    const { client, statements } = fakeStandby();
    // Before: on to the checks and the publication and slot, whose creation the fake "accepted", as 16 does.
    await expect(setup(client, { ...options, dryRun: false })).rejects.toMatchObject({ code: 'PG_QUERY_FAILED', message: expect.stringContaining('is a standby'), hint: STANDBY_FIX });
    expect(statements).toEqual(['SELECT pg_is_in_recovery() AS in_recovery']);
  });

  it('--dry-run: the standby is its one failed check, and nothing is planned', async () => {
    const { client, statements } = fakeStandby();
    const report = await setup(client, { ...options, dryRun: true });
    expect(report).toEqual({ ok: false, dryRun: true, checks: [{ name: 'primary', ok: false, detail: expect.stringContaining('pg_is_in_recovery() is true'), fix: STANDBY_FIX }], steps: [] });
    expect(statements).toHaveLength(1);
  });
});
