import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { setup } from '../../src/ops/setup.js';
import { load } from '../support/config-load.js';

/**
 * A primary with no publication and no slot, whose CREATE PUBLICATION refuses the row filter as PostgreSQL 15 does
 * an unknown column (42703). `sent`: every statement, to see that nothing is left created.
 */
function fakeServer(sent: string[]): pg.Client {
  const server = { wal_level: 'logical', max_slots: 10, used_slots: 0, max_senders: 10, used_senders: 0, role: 'owner', superuser: false, replication: true, database: 'app', can_create: true, version_num: 150010, version: '15.10' };
  const query = (sql: string | { text: string }) => {
    const text = typeof sql === 'string' ? sql : sql.text;
    sent.push(text);
    if (text.startsWith('SELECT pg_is_in_recovery()')) return Promise.resolve({ rows: [{ in_recovery: false }] });
    if (text.includes('max_wal_senders')) return Promise.resolve({ rows: [server] });
    if (text.includes('relowner')) return Promise.resolve({ rows: [{ owner: 'owner', owned: true, schema_usage: true }] });
    if (text.startsWith('CREATE PUBLICATION')) return Promise.reject(Object.assign(new Error('column "nosuchcol" does not exist'), { code: '42703' }));
    return Promise.resolve({ rows: [] });
  };
  return { query } as unknown as pg.Client;
}

describe('setup --dry-run with a --row-filter PostgreSQL refuses', () => {
  it('fails a check, as the real run fails (CONFIG_INVALID, exit 2), and creates nothing', async () => {
    const sent: string[] = [];
    const options = { slot: 'outbox_relay', publication: 'outbox_relay', republish: { publication: 'outbox_relay' }, tables: load({}).tables, rowFilter: "nosuchcol <> 'x'", dryRun: true };
    const report = await setup(fakeServer(sent), options);
    // Before: every check passed and --dry-run exited 0, printing the CREATE PUBLICATION the real run is refused.
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.name === 'row filter')).toMatchObject({ ok: false, detail: expect.stringContaining('column "nosuchcol" does not exist') as unknown });
    expect(sent.at(-1)).toBe('ROLLBACK');
  });
});
