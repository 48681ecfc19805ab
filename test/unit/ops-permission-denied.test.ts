import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { opsError } from '../../src/ops/connection.js';
import { republishScope } from '../../src/source/republish-command.js';
import { load } from '../support/config-load.js';

const refused = (message: string) => Object.assign(new pg.DatabaseError(message, message.length, 'error'), { code: '42501' });

describe('an operator command refused a privilege (42501)', () => {
  // Before: 'run outbox-relay setup --dry-run as this role', whose checks passed for a role republish then found
  // without SELECT on the outbox table (found by trying the CLI's exits).
  it('names the GRANT for the table or schema PostgreSQL names', () => {
    expect(opsError(refused('permission denied for table outbox'), 'repnosel')).toMatchObject({
      code: 'PG_PERMISSION_DENIED',
      message: 'role "repnosel" lacks a privilege: permission denied for table outbox',
      hint: expect.stringMatching(/^as the table's owner or a superuser: GRANT SELECT ON "outbox" TO "repnosel";/),
    });
    expect(opsError(refused('permission denied for schema App'), 'Relay Role').hint).toMatch(/^as the schema's owner or a superuser: GRANT USAGE ON SCHEMA "App" TO "Relay Role";/);
  });

  // Before: "GRANT SELECT ON outbox", PostgreSQL's name alone: run as printed, it found a table of that name on the
  // search_path of whoever ran it (public.outbox, or none), not the relay's billing.outbox.
  it("names one of the command's tables (republish's) schema-qualified, quoted", () => {
    const relay = load({ tables: JSON.stringify([{ table: 'billing.outbox' }, { table: 'public.orders_outbox' }]) });
    const names = { slot: relay.slot, ...republishScope(relay) };
    expect(opsError(refused('permission denied for table outbox'), 'repnosel', names).hint).toMatch(/^as the table's owner or a superuser: GRANT SELECT ON "billing"\."outbox" TO "repnosel";/);
    expect(opsError(refused('permission denied for table orders_outbox'), 'repnosel', names).hint).toMatch(/ GRANT SELECT ON "public"\."orders_outbox" TO /);
  });

  it('keeps setup --dry-run for a refusal that names neither', () => {
    expect(opsError(refused('permission denied for function pg_terminate_backend'), 'r').hint).toMatch(/^run outbox-relay setup --dry-run as this role/);
  });
});
