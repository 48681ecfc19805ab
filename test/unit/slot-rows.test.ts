import { describe, expect, it } from 'vitest';
import { keyValues, slotRows } from '../../src/cli/commands/output.js';
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
  safeWalSize,
  lagBytes: 0,
});

const safeWal = (s: SlotStatus) => keyValues(slotRows(s)).split('\n').find((l) => l.startsWith('safe_wal_size'));

describe('slotRows, safe_wal_size (NULL in PostgreSQL for no limit, a lost slot and no WAL reserved)', () => {
  it('says a lost slot has no WAL left, not that it is unlimited', () => {
    expect(safeWal(slot('lost', null))).toMatch(/none: the WAL the slot needs was removed .*Slot lost/);
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
