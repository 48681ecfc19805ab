import { describe, expect, it } from 'vitest';
import { republishCommand, republishScope } from '../../src/source/republish-command.js';
import { load } from '../support/config-load.js';

/** The printed command's words as a shell gives them to the program: bare characters, \-escaped ones and single-quoted parts. */
function shellWords(command: string): string[] {
  const part = /\\(.)|'([^']*)'|([^\s'\\])/gy;
  return [...command.matchAll(/(?:\\.|'[^']*'|[^\s'\\])+/g)].map(([word]) => word.replace(part, (_, escaped, quoted, bare) => escaped ?? quoted ?? bare));
}

/** The value of each --flag of the printed command. */
function flags(command: string): Record<string, string> {
  const words = shellWords(command);
  const out: Record<string, string> = {};
  words.forEach((w, i) => {
    if (w.startsWith('--')) out[w.slice(2)] = words[i + 1]!;
  });
  return out;
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

  it('with the single-table settings, names no --tables (republish reads the table setting as the relay does)', () => {
    const command = republishCommand('<time>', republishScope(load({ table: 'app.outbox', publication: 'app_pub' })));
    expect(command).toBe('outbox-relay republish --since <time> --publication app_pub');
  });

  it('prints a publication name a shell would split or unquote as one word', () => {
    expect(flags(republishCommand('<time>', { publication: "it's pub" })).publication).toBe("it's pub");
  });
});
