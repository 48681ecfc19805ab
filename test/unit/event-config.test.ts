import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadConfig } from '../../src/config/relay-config.js';

const load = (flags: Record<string, unknown> = {}, file?: unknown) => {
  let configFile: string | undefined;
  if (file !== undefined) {
    configFile = join(tmpdir(), `event-config-${process.pid}-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(configFile, YAML.stringify(file));
  }
  return { config: () => loadConfig({ flags, env: {}, configFile }), configFile };
};

describe('event shaping settings', () => {
  it('the debezium preset replaces defaults only: an explicit setting still wins', () => {
    const [table] = load({ preset: 'debezium' }).config().tables;
    expect(table!.columns).toEqual({ id: 'id', key: 'aggregateid', payload: 'payload', type: 'type', aggregateType: 'aggregatetype', aggregateId: 'aggregateid' });
    expect(table!.topic).toBe('outbox.event.${aggregatetype}');
    const [custom] = load({ preset: 'debezium', 'mapping.key': 'id', topic: 'events' }).config().tables;
    expect(custom!.columns.key).toBe('id');
    expect(custom!.topic).toBe('events');
  });

  it('routes from a flag: pattern=topic pairs in order; filters as lists', () => {
    const [table] = load({ routes: 'PaymentRefunded=refunds, Payment*=payments', 'filter.excludeTypes': '*Internal,*Draft' }).config().tables;
    expect(table!.routes).toEqual([
      { type: 'PaymentRefunded', topic: 'refunds' },
      { type: 'Payment*', topic: 'payments' },
    ]);
    expect(table!.filter).toEqual({ excludeTypes: ['*Internal', '*Draft'] });
  });

  it("a flag's '' unsets routes and a filter over the file's and the environment's; an empty variable leaves the file's", () => {
    const { configFile } = load({}, { routes: [{ type: 'Order*', topic: 'orders' }], filter: { includeTypes: ['Order*'] } });
    const env = { OUTBOX_RELAY_FILTER_EXCLUDE_TYPES: '*Draft', OUTBOX_RELAY_ROUTES: '' };
    const cleared = loadConfig({ flags: { routes: '', 'filter.includeTypes': '', 'filter.excludeTypes': '' }, env, configFile }).tables[0]!;
    expect([cleared.routes, cleared.filter]).toEqual([undefined, {}]);
    const kept = loadConfig({ flags: {}, env, configFile }).tables[0]!;
    expect([kept.routes, kept.filter]).toEqual([[{ type: 'Order*', topic: 'orders' }], { includeTypes: ['Order*'], excludeTypes: ['*Draft'] }]);
  });

  it('a list flag as a JSON array: its entries as written, a comma inside one included', () => {
    expect(load({ 'filter.includeTypes': '["Order,Created", " Invoice*"]' }).config().tables[0]!.filter).toEqual({ includeTypes: ['Order,Created', ' Invoice*'] });
  });

  it('tables: each entry over the single-table settings, with its own preset, mapping, routes and filter', () => {
    const { config } = load({ 'mapping.key': 'aggregate_id' }, {
      topic: 'shared',
      tables: [{ table: 'sales.outbox' }, { table: 'billing.events', preset: 'debezium', routes: [{ aggregateType: 'invoice', topic: 'invoices' }], filter: { includeTypes: ['Invoice*'] } }],
    });
    const [sales, billing] = config().tables;
    expect([sales!.schema, sales!.table, sales!.topic, sales!.columns.key]).toEqual(['sales', 'outbox', 'shared', 'aggregate_id']);
    // The flag set mapping.key explicitly, so the entry's preset does not replace it; the topic came from the file.
    expect([billing!.schema, billing!.table, billing!.columns.id, billing!.columns.key, billing!.topic]).toEqual(['billing', 'events', 'id', 'aggregate_id', 'shared']);
    expect(billing!.routes).toEqual([{ aggregateType: 'invoice', topic: 'invoices' }]);
    expect(billing!.filter).toEqual({ includeTypes: ['Invoice*'] });
  });

  it('errors name the setting, the path inside the list and the source', () => {
    const bad = load({}, { tables: [{ table: 'public.outbox', mapping: { payload: 'no such!' } }] });
    expect(bad.config).toThrow(/tables.*0\.mapping\.payload/);
    expect(bad.config).toThrow(bad.configFile!);
    const unknownKey = load({}, { tables: [{ table: 'public.outbox', mappings: {} }] });
    expect(unknownKey.config).toThrow(/mappings/);
    const both = load({ table: 'public.outbox' }, { tables: [{ table: 'public.other' }] });
    expect(both.config).toThrow(/both table \(flag\) and tables \(file\)/);
    const twice = load({}, { tables: [{ table: 'a' }, { table: 'public.a' }] });
    expect(twice.config).toThrow(/public\.a is listed twice/);
  });

  it('rules, filters and the CloudEvents envelope need the event type column', () => {
    expect(load({ 'mapping.type': '', routes: 'A*=a' }).config).toThrow(/mapping\.type/);
    expect(load({ 'mapping.type': '', 'filter.includeTypes': 'A*' }).config).toThrow(/mapping\.type/);
    expect(load({ 'mapping.type': '', 'envelope.mode': 'cloudevents' }).config).toThrow(/ce_type/);
    expect(load({ 'mapping.aggregateType': '', 'filter.excludeAggregateTypes': 'x' }).config).toThrow(/mapping\.aggregateType/);
  });

  it('messages are requested only with prefixes; heartbeats off by default; dead-letter settings', () => {
    expect(load().config().messages).toBeUndefined();
    expect(load({ 'messages.prefixes': 'outbox,billing' }).config().messages).toMatchObject({ prefixes: ['outbox', 'billing'], topic: 'outbox.${aggregate_type}' });
    // A placeholder no message has (a Debezium-style name) fails at start, naming the setting, not as every event's poison.
    expect(load({ 'messages.prefixes': 'outbox', 'messages.topic': 'events.${aggregatetype}' }).config).toThrow(/messages\.topic.*\$\{aggregatetype\}/);
    expect(load({ 'messages.prefixes': 'outbox', 'messages.topic': '${prefix}.${type}' }).config().messages?.topic).toBe('${prefix}.${type}');
    expect(load().config().heartbeat).toEqual({ intervalMs: 0, prefix: 'outbox-relay-heartbeat' });
    const config = load({ 'delivery.onPoison': 'dead-letter', 'retry.recordMaxAttempts': '5' }).config();
    expect(config.delivery).toMatchObject({ onPoison: 'dead-letter', deadLetterTopic: '${topic}.dlq' });
    expect(config.retry).toMatchObject({ recordMaxAttempts: 5, recordMaxDurationMs: 10_000 });
  });
});
