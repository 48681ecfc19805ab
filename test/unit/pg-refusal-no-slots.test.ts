import { describe, expect, it } from 'vitest';
import { pgRefusal } from '../../src/ops/pg-refusals.js';

describe('slot create on a server with max_replication_slots = 0', () => {
  it('is not reported as wal_level: PostgreSQL 15 answers 55000 there too, with wal_level = logical', () => {
    // What PostgreSQL 15 (wal_level = logical, max_replication_slots = 0) answers pg_create_logical_replication_slot.
    const refusal = pgRefusal('55000', 'replication slots can only be used if max_replication_slots > 0', undefined)!;
    expect(refusal.code).not.toBe('PG_WAL_LEVEL');
    expect(refusal.hint).toMatch(/max_replication_slots/);
    expect(refusal.hint).not.toMatch(/wal_level/);
  });
});
