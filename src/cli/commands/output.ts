import { RelayError } from '../../errors.js';
import type { Check } from '../../ops/checks.js';
import type { PublicationInfo } from '../../ops/publications.js';
import type { SlotStatus } from '../../ops/slots.js';

export type Cell = string | number | boolean | null | undefined;

function cell(value: Cell): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value);
}

/** Aligned `key  value` lines. */
export function keyValues(rows: [string, Cell][], indent = ''): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${indent}${k.padEnd(width)}  ${cell(v)}`).join('\n');
}

/** A plain text table: a header row and columns padded to their widest cell. */
export function table(headers: string[], rows: Cell[][]): string {
  const text = [headers, ...rows.map((r) => r.map(cell))];
  const widths = headers.map((_, i) => Math.max(...text.map((r) => r[i]!.length)));
  return text.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** `1.5 MiB (1572864 bytes)`: readable, and exact for whoever compares numbers. */
export function bytes(n: number | null): string {
  if (n === null) return '-';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = '';
  for (const u of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = u;
  }
  return unit ? `${value.toFixed(1)} ${unit} (${n} bytes)` : `${n} bytes`;
}

/**
 * PostgreSQL leaves safe_wal_size NULL for three reasons: no limit (max_slot_wal_keep_size = -1), a lost slot
 * (its WAL already removed) and a slot that reserves no WAL (wal_status NULL); wal_status tells them apart.
 */
function safeWalSize(slot: SlotStatus): Cell {
  if (slot.safeWalSize !== null) return bytes(slot.safeWalSize);
  if (slot.walStatus === 'lost') return `none: the slot is invalidated${slot.invalidationReason ? ` (${slot.invalidationReason})` : ''}, it keeps no WAL (docs/operations.md "Slot lost")`;
  if (slot.walStatus === null) return null;
  return 'unlimited (max_slot_wal_keep_size = -1)';
}

/** wal_status as `slot list` shows it: a lost slot's with its cause. */
export function walStatusCell(slot: SlotStatus): Cell {
  return slot.invalidationReason ? `${slot.walStatus} (${slot.invalidationReason})` : slot.walStatus;
}

/** setup's and slot create's --failover-slot. */
export const FAILOVER_SLOT_OPTION = 'PostgreSQL 17+: create the slot as a failover slot, which standbys with sync_replication_slots keep a usable copy of (refused on older servers; an existing slot must be one)';

/** PostgreSQL 17+: yes / yes, synced (a standby's copy) / no; null before 17, which has no failover slots. */
export function failoverCell(slot: SlotStatus): Cell {
  if (slot.failover === null) return null;
  return slot.failover ? (slot.synced ? 'yes, synced' : 'yes') : 'no';
}

export function slotRows(slot: SlotStatus): [string, Cell][] {
  return [
    ['slot', slot.name],
    ['type', `${slot.slotType}${slot.plugin ? ` (${slot.plugin})` : ''}`],
    ['database', slot.database],
    ['active', slot.active ? `yes (pid ${slot.activePid})` : 'no'],
    ...(slot.heldBy ? [['held_by', slot.heldBy] as [string, Cell]] : []),
    ['confirmed_flush_lsn', slot.confirmedFlushLsn],
    ['restart_lsn', slot.restartLsn],
    ['wal_status', slot.walStatus],
    // From PostgreSQL 16 'lost' stands for every cause, and each has its own fix.
    ...(slot.invalidationReason ? [['invalidation_reason', slot.invalidationReason] as [string, Cell]] : []),
    ['safe_wal_size', safeWalSize(slot)],
    ['lag', bytes(slot.lagBytes)],
    // Before PostgreSQL 17 there are no failover slots: the rows would only say so.
    ...(slot.failover === null
      ? []
      : ([
          ['failover', slot.failover ? 'yes' : 'no'],
          ['synced', slot.synced ? 'yes (a standby\'s copy of the primary\'s slot, usable once promoted)' : 'no'],
        ] as [string, Cell][])),
  ];
}

export function publicationText(pub: PublicationInfo): string {
  const head = keyValues([
    ['publication', pub.name],
    ['owner', pub.owner],
    ['publish', pub.publish.join(', ') || 'nothing'],
    ['tables', pub.allTables ? 'ALL TABLES' : pub.tables.length],
  ]);
  if (pub.tables.length === 0) return head;
  return `${head}\n\n${table(['TABLE', 'ROW FILTER'], pub.tables.map((t) => [`${t.schema}.${t.table}`, t.rowFilter]))}`;
}

/** Checks as `setup` prints them: each with ok or FAIL, and under a failed one the fix to run. */
export function checksText(checks: Check[]): string {
  const lines = ['checks:'];
  const width = Math.max(...checks.map((c) => c.name.length));
  for (const check of checks) {
    lines.push(`  ${check.ok ? 'ok  ' : 'FAIL'}  ${check.name.padEnd(width)}  ${check.detail}`);
    if (check.fix) lines.push(`        fix: ${check.fix}`);
  }
  return lines.join('\n');
}

/** The error after failed checks (printed with checksText), of `setup` and of `publication create` alike. */
export function checksFailedError(failed: Check[], outcome: string, hint: string): RelayError {
  return new RelayError('PG_SETUP_CHECKS_FAILED', `${failed.length} check(s) failed: ${failed.map((c) => c.name).join(', ')}${outcome}`, { hint });
}
