import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runChecks } from '../../src/ops/checks.js';
import { load } from '../support/config-load.js';

/**
 * The role owns the outbox table but has no USAGE on its schema: CREATE PUBLICATION then fails with "permission
 * denied for schema" (measured on PostgreSQL 15), so the check that passes it must not say it may publish it.
 */
function fakeServer(): pg.Client {
  const server = { wal_level: 'logical', max_slots: 10, used_slots: 0, max_senders: 10, used_senders: 0, role: 'owner', superuser: false, replication: true, database: 'app', can_create: true, version_num: 150010, version: '15.10' };
  return {
    query: (sql: string) => Promise.resolve({ rows: sql.includes('max_wal_senders') ? [server] : [{ owner: 'owner', owned: true, schema_usage: false }] }),
  } as unknown as pg.Client;
}

describe('setup checks: the schema of a table to publish', () => {
  it('owning the table without USAGE on its schema fails, with the GRANT that fixes it', async () => {
    const checks = await runChecks(fakeServer(), { publication: 'outbox_relay', republish: { publication: 'outbox_relay' }, tables: load({ table: 'locked.outbox' }).tables, slot: undefined, existingPublication: undefined });
    expect(checks.find((c) => c.name === 'table locked.outbox')).toMatchObject({ ok: false, fix: 'as the schema owner: GRANT USAGE ON SCHEMA "locked" TO "owner";' });
  });
});
