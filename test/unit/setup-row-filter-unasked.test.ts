import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { existingPublicationChecks } from '../../src/ops/checks.js';
import type { PublicationInfo } from '../../src/ops/publications.js';

const client = { query: () => Promise.resolve({ rows: [] }) } as unknown as pg.Client;
const pub = (rowFilter: string | null): PublicationInfo => ({ name: 'outbox_relay', owner: 'admin', allTables: false, viaRoot: true, publish: ['insert'], tables: [{ schema: 'public', table: 'outbox', rowFilter }] });

describe('setup / publication create without --row-filter, of an existing publication', () => {
  it('one that filters the outbox rows (WHERE false passes nothing): a failed check with its fix, not "publishes insert"', async () => {
    const checks = await existingPublicationChecks(client, pub('false'), [{ schema: 'public', table: 'outbox' }], undefined);
    expect(checks.some((c) => !c.ok)).toBe(true);
    expect(checks.find((c) => !c.ok)?.fix).toContain('ALTER PUBLICATION "outbox_relay" SET TABLE "public"."outbox";');
  });

  it('one without a filter: passes', async () => {
    const checks = await existingPublicationChecks(client, pub(null), [{ schema: 'public', table: 'outbox' }], undefined);
    expect(checks.every((c) => c.ok)).toBe(true);
  });
});
