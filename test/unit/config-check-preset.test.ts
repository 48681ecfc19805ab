import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { redactedSettings } from '../../src/config/relay-config.js';
import { runCliSync } from '../support/cli.js';
import { load } from '../support/config-load.js';

interface Checked {
  settings: { key: string; value: unknown; source: string }[];
}

const checked = (args: string[], env: Record<string, string> = {}) => {
  const result = runCliSync(['config', 'check', '--json', '--kafka-brokers', 'k:9092', ...args], env);
  expect(result.status, result.stderr).toBe(0);
  return Object.fromEntries((JSON.parse(result.stdout) as Checked).settings.map((s) => [s.key, { value: s.value, source: s.source }]));
};

describe('config check and the start-up settings with a preset', () => {
  it('config check shows the values the debezium preset gives in place of the defaults, with the preset as their source; explicit settings keep theirs', () => {
    const byKey = checked(['--preset', 'debezium', '--mapping-type', 'kind'], { OUTBOX_RELAY_TOPIC: 'events' });
    expect(byKey['mapping.aggregateType']).toEqual({ value: 'aggregatetype', source: 'preset debezium' });
    expect(byKey['mapping.aggregateId']).toEqual({ value: 'aggregateid', source: 'preset debezium' });
    expect(byKey['mapping.key']).toEqual({ value: 'aggregateid', source: 'preset debezium' });
    expect(byKey['mapping.headers']).toEqual({ value: '', source: 'preset debezium' });
    expect(byKey['mapping.type']).toEqual({ value: 'kind', source: 'flag --mapping-type' });
    expect(byKey.topic).toEqual({ value: 'events', source: 'env OUTBOX_RELAY_TOPIC' });
    expect(byKey.preset).toEqual({ value: 'debezium', source: 'flag --preset' });
    // Not a key the preset sets.
    expect(byKey['mapping.nullPayload']).toEqual({ value: 'poison', source: 'default' });
  });

  it('config check text shows the preset values and source', () => {
    const result = runCliSync(['config', 'check', '--kafka-brokers', 'k:9092', '--preset', 'debezium']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^mapping\.type +type +preset debezium$/m);
    expect(result.stdout).toMatch(/^mapping\.headers +"" +preset debezium$/m);
    expect(result.stdout).toMatch(/^topic +outbox\.event\.\$\{aggregatetype\} +preset debezium$/m);
  });

  it('without a preset the defaults show as defaults', () => {
    const byKey = checked([]);
    expect(byKey['mapping.type']).toEqual({ value: 'event_type', source: 'default' });
    expect(byKey['mapping.key']).toEqual({ value: null, source: 'unset' });
  });

  it('the start-up settings (redactedSettings) hold the preset values the relay uses', () => {
    const settings = redactedSettings(load({ preset: 'debezium', 'mapping.headers': 'meta' }));
    expect(settings).toMatchObject({ 'mapping.type': 'type', 'mapping.aggregateType': 'aggregatetype', 'mapping.key': 'aggregateid', topic: 'outbox.event.${aggregatetype}', 'mapping.headers': 'meta' });
  });

  it('tables: the flat keys show the global preset, which a table without a preset of its own uses; a table with its own preset uses that', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'config-check-preset-')), 'relay.json');
    writeFileSync(file, JSON.stringify({ preset: 'debezium', tables: [{ table: 'sales.outbox' }, { table: 'billing.events', preset: 'none' }] }));
    const config = load({}, {}, file);
    expect(redactedSettings(config)['mapping.type']).toBe('type');
    expect(config.origins['mapping.type']).toBe('preset');
    expect(config.tables.map((t) => t.columns.type)).toEqual(['type', 'event_type']);
  });
});
