import { describe, expect, it } from 'vitest';
import { failoverCell, keyValues, slotRows, walStatusCell } from '../../src/cli/commands/output.js';
import type { SlotStatus } from '../../src/ops/slots.js';

const slot = (walStatus: string | null, safeWalSize: number | null): SlotStatus => ({
  name: 'outbox_relay',
  slotType: 'logical',
  plugin: 'pgoutput',
  database: 'app',
  inCurrentDatabase: true,
  active: false,
  activePid: null,
  heldBy: null,
  confirmedFlushLsn: '0/100',
  restartLsn: '0/80',
  walStatus,
  invalidationReason: null,
  safeWalSize,
  lagBytes: 0,
  failover: null,
  synced: null,
});

const safeWal = (s: SlotStatus) => keyValues(slotRows(s)).split('\n').find((l) => l.startsWith('safe_wal_size'));

describe('slotRows, safe_wal_size (NULL in PostgreSQL for no limit, a lost slot and no WAL reserved)', () => {
  it('says a lost slot keeps no WAL, not that it is unlimited', () => {
    expect(safeWal(slot('lost', null))).toMatch(/none: the slot is invalidated, it keeps no WAL .*Slot lost/);
    expect(safeWal(slot('lost', null))).not.toContain('unlimited');
  });

  it('says unlimited for a slot that holds its WAL with max_slot_wal_keep_size = -1', () => {
    expect(safeWal(slot('reserved', null))).toContain('unlimited (max_slot_wal_keep_size = -1)');
  });

  it('shows bytes under a limit and nothing for a slot that reserves no WAL', () => {
    expect(safeWal(slot('extended', 2048))).toContain('2.0 KiB (2048 bytes)');
    expect(safeWal(slot(null, null))).toMatch(/safe_wal_size\s+-$/);
  });
});

describe('slotRows and slot list: why a lost slot was invalidated', () => {
  const lost = (invalidationReason: string): SlotStatus => ({ ...slot('lost', null), invalidationReason });

  it('status shows invalidation_reason, and safe_wal_size names it, not removed WAL (from PostgreSQL 16 lost stands for every cause)', () => {
    // Before: no reason anywhere, and safe_wal_size said "the WAL the slot needs was removed" for an idle slot too.
    const text = keyValues(slotRows(lost('idle_timeout')));
    expect(text).toMatch(/^invalidation_reason\s+idle_timeout$/m);
    expect(safeWal(lost('idle_timeout'))).toMatch(/none: the slot is invalidated \(idle_timeout\), it keeps no WAL/);
  });

  it('a slot that is not lost has no invalidation_reason line; list shows wal_status with the reason of a lost one', () => {
    expect(keyValues(slotRows(slot('reserved', null)))).not.toContain('invalidation_reason');
    expect(walStatusCell(lost('rows_removed'))).toBe('lost (rows_removed)');
    expect(walStatusCell(slot('reserved', null))).toBe('reserved');
  });
});

describe('slotRows and slot list, failover and synced (PostgreSQL 17+)', () => {
  const lines = (s: SlotStatus) => keyValues(slotRows(s)).split('\n').filter((l) => /^(failover|synced)\b/.test(l));

  it('shows whether the slot is a failover slot and, on a standby, its synced copy', () => {
    expect(lines({ ...slot('reserved', null), failover: true, synced: false })).toEqual([expect.stringMatching(/^failover\s+yes$/), expect.stringMatching(/^synced\s+no$/)]);
    expect(lines({ ...slot('reserved', null), failover: true, synced: true })[1]).toMatch(/^synced\s+yes \(a standby's copy/);
    expect(lines({ ...slot('reserved', null), failover: false, synced: false })[0]).toMatch(/^failover\s+no$/);
    expect(failoverCell({ ...slot('reserved', null), failover: true, synced: true })).toBe('yes, synced');
  });

  it('says nothing of them before PostgreSQL 17, which has no failover slots', () => {
    expect(lines(slot('reserved', null))).toEqual([]);
    expect(failoverCell(slot('reserved', null))).toBeNull();
  });
});
