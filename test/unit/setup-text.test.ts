import { describe, expect, it } from 'vitest';
import { setupText } from '../../src/cli/commands/setup.js';

const planned = [{ object: 'slot' as const, name: 'outbox_relay', result: 'planned' as const, sql: "SELECT pg_create_logical_replication_slot('outbox_relay', 'pgoutput')" }];

describe('setup --dry-run text', () => {
  it('checks passed: the SQL the run would run', () => {
    const text = setupText({ ok: true, dryRun: true, checks: [{ name: 'wal_level', ok: true, detail: 'logical' }], steps: planned });
    expect(text).toContain('dry run, would run:\n  SELECT pg_create_logical_replication_slot');
  });

  it('a check failed: the SQL is what a run would do once the checks pass, not what it does now (before: "would run:" as if they had passed)', () => {
    const text = setupText({ ok: false, dryRun: true, checks: [{ name: 'wal_level', ok: false, detail: 'replica', fix: 'set wal_level = logical' }], steps: planned });
    expect(text).not.toContain('would run:');
    expect(text).toContain('dry run, would run once the failed checks pass (a run now creates nothing):\n  SELECT pg_create_logical_replication_slot');
  });
});
