import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { missingLine } from '../../src/cli/commands/status.js';
import type { RelayError } from '../../src/errors.js';
import { opsError } from '../../src/ops/connection.js';
import { requirePublication } from '../../src/ops/publications.js';
import { requireSlot } from '../../src/ops/slots.js';
import { republishScope } from '../../src/source/republish-command.js';
import { load } from '../support/config-load.js';
import { printedSettings } from '../support/printed-command.js';

// The relay's settings came from its flags; the shell its fix is pasted in names another slot, publication and table.
const relay = load({ slot: 'billing_slot', publication: 'billing_pub', table: 'billing.outbox', 'mapping.key': 'aggregate_id', topic: 'billing.events' });
const names = { slot: relay.slot, ...republishScope(relay) };
const ELSEWHERE = { OUTBOX_RELAY_SLOT: 'other_slot', OUTBOX_RELAY_PUBLICATION: 'other_pub', OUTBOX_RELAY_TABLE: 'public.other_outbox', OUTBOX_RELAY_MAPPING_KEY: 'id' };
/** A server where neither the slot nor the publication exists. */
const nothing = { query: async () => ({ rows: [] }) } as unknown as pg.Client;

/** Each `outbox-relay <command>` in `text`, read as its command line where ELSEWHERE is the environment, acts on the relay's names. */
function expectRelayNames(text: string, command: string, withTables: boolean): void {
  const printed = printedSettings(text, command);
  expect(printed, text).not.toEqual([]);
  for (const given of printed) {
    const loaded = load(given, ELSEWHERE);
    expect([loaded.slot, loaded.publication], text).toEqual(['billing_slot', 'billing_pub']);
    if (withTables) expect(loaded.tables, text).toEqual(relay.tables);
  }
}

// Before: each printed a bare "outbox-relay setup" (or slot create): pasted elsewhere, it made the default slot
// and publication for the default table.
describe("a missing slot's or publication's fix names the relay's slot, publication and tables", () => {
  it('requireSlot (slot status, slot advance): slot create and setup', async () => {
    const missing = (await requireSlot(nothing, names).catch((err: unknown) => err)) as RelayError;
    expect(missing.code).toBe('PG_SLOT_MISSING');
    expectRelayNames(missing.hint!, 'slot create', false);
    expectRelayNames(missing.hint!, 'setup', true);
  });

  it('requirePublication (publication show): setup', async () => {
    const missing = (await requirePublication(nothing, names).catch((err: unknown) => err)) as RelayError;
    expect(missing.code).toBe('PG_PUBLICATION_MISSING');
    expectRelayNames(missing.hint!, 'setup', true);
  });

  it("status's line of a missing slot and of a missing publication: setup", () => {
    expectRelayNames(missingLine('slot', relay), 'setup', true);
    expectRelayNames(missingLine('publication', relay), 'setup', true);
  });

  it("PostgreSQL's undefined_object (42704) of an operator command: setup", () => {
    const refused = Object.assign(new pg.DatabaseError('replication slot "billing_slot" does not exist', 0, 'error'), { code: '42704' });
    const error = opsError(refused, 'relay', names);
    expect(error.code).toBe('PG_SLOT_MISSING');
    expectRelayNames(error.hint!, 'setup', true);
  });
});
