import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCliSync } from '../support/cli.js';

interface Checked {
  settings: { key: string; value: unknown; source: string }[];
  tables: { table: string; topic: string; columns: Record<string, string>; routes: unknown[]; filter: Record<string, string[]> }[];
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

  it('lists each table as run reads it: its entry over the flat settings and the preset it uses (columns, topic, routes, filter)', () => {
    const json = JSON.parse(check(['--json', '--config', tablesFile()])) as Checked;
    expect(json.tables).toEqual([
      { table: 'sales.outbox', topic: 'outbox.event.${aggregatetype}', columns: { id: 'id', key: 'aggregateid', payload: 'payload', type: 'type', aggregateType: 'aggregatetype', aggregateId: 'aggregateid' }, routes: [], filter: {} },
      {
        table: 'billing.events',
        topic: 'billing',
        columns: { id: 'id', key: 'id', payload: 'payload', type: 'event_type', aggregateType: 'aggregate_type', aggregateId: 'aggregate_id', headers: 'headers' },
        routes: [{ type: 'refund.*', topic: 'refunds' }],
        filter: { excludeTypes: ['internal.*'] },
      },
    ]);
    const text = check(['--config', tablesFile()]);
    expect(text).toMatch(/^tables as run reads them:\nTABLE +TOPIC +COLUMNS +ROUTES AND FILTER$/m);
    expect(text).toMatch(/^sales\.outbox +outbox\.event\.\$\{aggregatetype\} +id=id key=aggregateid payload=payload type=type aggregateType=aggregatetype aggregateId=aggregateid +-$/m);
    expect(text).toMatch(
      /^billing\.events +billing +id=id key=id payload=payload type=event_type aggregateType=aggregate_type aggregateId=aggregate_id headers=headers +routes \[\{"type":"refund\.\*","topic":"refunds"\}\] filter \{"excludeTypes":\["internal\.\*"\]\}$/m,
    );
  });

  it('without tables: the flat settings are the one table, listed in JSON only', () => {
    expect(check(['--kafka-brokers', 'k:9092'])).not.toContain('tables as run reads them');
    expect((JSON.parse(check(['--json', '--kafka-brokers', 'k:9092'])) as Checked).tables).toMatchObject([{ table: 'public.outbox', topic: 'outbox.${aggregate_type}', columns: { id: 'id', key: 'id' } }]);
  });
});
