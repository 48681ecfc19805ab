import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCliSync } from '../support/cli.js';

interface Checked {
  settings: { key: string; value: unknown; source: string }[];
}

/** A config file with a global preset and two tables: one inheriting it, one with its own preset, topic, routes and filter. */
function tablesFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'config-check-tables-')), 'relay.json');
  writeFileSync(
    file,
    JSON.stringify({
      preset: 'debezium',
      kafka: { brokers: ['k:9092'] },
      tables: [{ table: 'sales.outbox' }, { table: 'billing.events', preset: 'none', topic: 'billing', routes: [{ type: 'refund.*', topic: 'refunds' }], filter: { excludeTypes: ['internal.*'] } }],
    }),
  );
  return file;
}

const check = (args: string[]) => {
  const result = runCliSync(['config', 'check', ...args]);
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
};

describe('config check with tables', () => {
  it('shows the single-table `table` default as not used, as run ignores it, and keeps it in single-table mode', () => {
    const byKey = Object.fromEntries((JSON.parse(check(['--json', '--config', tablesFile()])) as Checked).settings.map((s) => [s.key, s]));
    expect(byKey.table).toEqual({ key: 'table', value: null, source: 'default (ignored: tables lists the tables)' });
    expect(check(['--config', tablesFile()])).toMatch(/^table +- +default \(ignored: tables lists the tables\)$/m);
    expect(check(['--kafka-brokers', 'k:9092'])).toMatch(/^table +public\.outbox +default$/m);
  });
});
