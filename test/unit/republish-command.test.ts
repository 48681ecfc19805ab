import { describe, expect, it } from 'vitest';
import { republishCommand, republishScope } from '../../src/source/republish-command.js';
import { SETTINGS } from '../../src/config/settings.js';
import { load } from '../support/config-load.js';
import { shellWords } from '../support/shell-words.js';

/** The value of each --flag of the printed command. */
function flags(command: string): Record<string, string> {
  const words = shellWords(command);
  const out: Record<string, string> = {};
  words.forEach((w, i) => {
    if (w.startsWith('--')) out[w.slice(2)] = words[i + 1]!;
  });
  return out;
}

/** The settings the printed command's flags give, by key, as republish's command line hands them to the loader (--since aside). */
function givenSettings(command: string): Record<string, string> {
  const { since: _since, ...printed } = flags(command);
  return Object.fromEntries(Object.entries(printed).map(([flag, value]) => [SETTINGS.find((s) => s.flag === `--${flag}`)!.key, value]));
}

const TABLES = JSON.stringify([
  { table: 'billing.outbox', topic: 'billing.${aggregate_type}', filter: { includeTypes: ['Invoice*'] }, mapping: { timestamp: 'written_at' } },
  { table: 'public.orders_outbox', routes: [{ type: 'Order*', topic: 'orders' }] },
]);

describe('republishCommand: the republish a fix prints', () => {
  it("with the tables setting, names the relay's tables: its flags, read as republish reads them where the single-table settings differ, give the relay's tables, columns, filters, topics and routes", () => {
    // The relay's mapping.type comes from its environment, which the operator's shell may not have.
    const relay = load({ tables: TABLES, publication: 'billing_pub' }, { OUTBOX_RELAY_MAPPING_TYPE: 'event_type', OUTBOX_RELAY_MAPPING_AGGREGATE_TYPE: 'aggregate_type' });
    const printed = flags(republishCommand("'2026-12-05T08:00:00Z'", republishScope(relay)));
    expect(printed.since).toBe('2026-12-05T08:00:00Z');
    expect(printed.publication).toBe('billing_pub');
    for (const env of [{}, { OUTBOX_RELAY_MAPPING_TYPE: 'kind', OUTBOX_RELAY_TOPIC: 'elsewhere', OUTBOX_RELAY_MAPPING_TIMESTAMP: 'created_at' }] as Record<string, string>[]) {
      const republish = load({ tables: printed.tables, publication: printed.publication }, env);
      expect(republish.publication).toBe('billing_pub');
      expect(republish.tables).toEqual(relay.tables);
    }
  });

  it("with the single-table settings, names the relay's table by its flags: read as republish reads them where the environment sets other single-table settings, they give the relay's table, columns, topic and filter", () => {
    const relay = load({ table: 'app.events', publication: 'app_pub', 'mapping.id': 'event_id', 'mapping.key': 'aggregate_id', 'mapping.headers': '', 'mapping.timestamp': 'written_at', topic: 'app.${aggregate_type}', 'filter.includeTypes': 'Order*,Invoice*', routes: 'Invoice*=invoices' }, { OUTBOX_RELAY_MAPPING_PAYLOAD: 'body' });
    const { since, ...printed } = flags(republishCommand("'2026-12-05T08:00:00Z'", republishScope(relay)));
    expect(since).toBe('2026-12-05T08:00:00Z');
    // Each printed flag as the setting it sets, as republish's command line hands them to the loader.
    const given = Object.fromEntries(Object.entries(printed).map(([flag, value]) => [SETTINGS.find((s) => s.flag === `--${flag}`)!.key, value]));
    const elsewhere = [{}, { OUTBOX_RELAY_TABLE: 'public.outbox', OUTBOX_RELAY_MAPPING_TYPE: 'kind', OUTBOX_RELAY_MAPPING_HEADERS: 'meta', OUTBOX_RELAY_MAPPING_PAYLOAD: 'data', OUTBOX_RELAY_TOPIC: 'elsewhere', OUTBOX_RELAY_FILTER_INCLUDE_TYPES: 'Payment*', OUTBOX_RELAY_ROUTES: 'Order*=orders' }, { OUTBOX_RELAY_PRESET: 'debezium' }] as Record<string, string>[];
    for (const env of elsewhere) {
      const republish = load(given, env);
      expect(republish.publication).toBe('app_pub');
      expect(republish.tables).toEqual(relay.tables);
    }
  });

  it('prints a filter glob that holds a comma so that republish reads it as one glob, not split in two', () => {
    // The relay's globs as a config file's list gives them: one holds a comma, which the comma-separated flag splits.
    const relay = load({ table: 'app.events', 'filter.includeTypes': ['Order,Created', 'Invoice*'], 'filter.excludeTypes': ['Legacy*'] });
    const republish = load(givenSettings(republishCommand("'2026-12-05T08:00:00Z'", republishScope(relay))));
    expect(republish.tables[0]!.filter).toEqual({ includeTypes: ['Order,Created', 'Invoice*'], excludeTypes: ['Legacy*'] });
    expect(republish.tables).toEqual(relay.tables);
  });

  it('unsets a route or filter the relay has none of: where the command is pasted, OUTBOX_RELAY_ROUTES and OUTBOX_RELAY_FILTER_* do not route or filter what it re-sends', () => {
    const elsewhere = { OUTBOX_RELAY_ROUTES: 'Order*=orders', OUTBOX_RELAY_FILTER_INCLUDE_TYPES: 'Payment*', OUTBOX_RELAY_FILTER_EXCLUDE_TYPES: 'Invoice*', OUTBOX_RELAY_FILTER_INCLUDE_AGGREGATE_TYPES: 'Cart', OUTBOX_RELAY_FILTER_EXCLUDE_AGGREGATE_TYPES: 'User' };
    // A single table with an exclude filter only, and tables of which one has routes and a filter of its own and one has neither.
    const single = load({ table: 'app.events', 'filter.excludeTypes': 'Legacy*' });
    const listed = load({ tables: JSON.stringify([{ table: 'app.events', routes: [{ type: 'Order*', topic: 'orders' }], filter: { includeTypes: ['Order*'] } }, { table: 'app.audit' }]) });
    for (const relay of [single, listed]) {
      const republish = load(givenSettings(republishCommand("'2026-12-05T08:00:00Z'", republishScope(relay))), elsewhere);
      expect(republish.tables).toEqual(relay.tables);
    }
    expect(single.tables[0]!.filter).toEqual({ excludeTypes: ['Legacy*'] });
    expect(listed.tables[1]!.routes).toBeUndefined();
  });

  it("prints what a NULL payload becomes and the envelope, at their defaults too: the environment where the command is pasted does not change the records it sends", () => {
    const relays = [
      load({ table: 'app.events' }),
      load({ table: 'app.events', 'mapping.nullPayload': 'tombstone', 'envelope.mode': 'cloudevents' }),
      load({ tables: JSON.stringify([{ table: 'app.events' }, { table: 'app.audit' }]), 'envelope.mode': 'cloudevents', 'envelope.source': 'urn:app' }),
    ];
    const elsewhere: Record<string, string>[] = [
      { OUTBOX_RELAY_MAPPING_NULL_PAYLOAD: 'tombstone', OUTBOX_RELAY_ENVELOPE_MODE: 'cloudevents', OUTBOX_RELAY_ENVELOPE_SOURCE: 'urn:elsewhere' },
      { OUTBOX_RELAY_MAPPING_NULL_PAYLOAD: 'poison', OUTBOX_RELAY_ENVELOPE_MODE: 'none' },
    ];
    for (const relay of relays) {
      for (const env of elsewhere) {
        const republish = load(givenSettings(republishCommand("'2026-12-05T08:00:00Z'", republishScope(relay))), env);
        expect(republish.tables).toEqual(relay.tables);
      }
    }
    expect(relays.map((r) => [r.tables[0]!.nullPayload, r.tables[0]!.envelope])).toEqual([
      ['poison', { mode: 'none', source: undefined }],
      ['tombstone', { mode: 'cloudevents', source: undefined }],
      ['poison', { mode: 'cloudevents', source: 'urn:app' }],
    ]);
  });

  it('prints a publication name a shell would split or unquote as one word', () => {
    expect(flags(republishCommand('<time>', { publication: "it's pub" })).publication).toBe("it's pub");
  });
});
