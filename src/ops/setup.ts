import type pg from 'pg';
import { existingPublicationChecks, runChecks, type Check } from './checks.js';
import { createPublicationSql } from './publication-sql.js';
import { inRecovery, primaryCheck, standbyError } from './primary.js';
import type { TableMapping } from '../config/types.js';
import type { RepublishScope } from '../source/republish-command.js';
import { createPublication, findPublication } from './publications.js';
import { createSlot, createSlotSql, findSlot } from './slots.js';

export interface SetupStep {
  object: 'publication' | 'slot';
  name: string;
  /** `exists`: left alone; `created`: done now; `planned`: what --dry-run would do. */
  result: 'exists' | 'created' | 'planned';
  sql: string;
}

export interface SetupReport {
  ok: boolean;
  dryRun: boolean;
  checks: Check[];
  steps: SetupStep[];
}

export interface SetupOptions {
  slot: string;
  publication: string;
  tables: TableMapping[];
  /** The publication and tables a lost slot's fix names in its republish (republishScope). */
  republish: RepublishScope;
  rowFilter?: string;
  dryRun: boolean;
  /** --failover-slot: create the slot as a PostgreSQL 17 failover slot (an existing one must be one). */
  failoverSlot?: boolean;
}

/**
 * Checks first, then creates what is missing. The publication comes before the slot: pgoutput decides what is
 * published with the catalog as of each change, so rows written before the publication existed would never be
 * streamed. With a failed check nothing is created; --dry-run creates nothing either way. On a standby it is
 * refused before anything else is read (--dry-run: that one failed check), as the commands that create or
 * change one object are (opsCommand's `changes`).
 */
export async function setup(client: pg.Client, options: SetupOptions): Promise<SetupReport> {
  const standby = await inRecovery(client);
  if (standby && !options.dryRun) throw standbyError('setup');
  // The other checks would fail beside it for the standby's sake (a slot's lag reads pg_current_wal_lsn()).
  if (standby) return { ok: false, dryRun: true, checks: [primaryCheck(true)], steps: [] };
  const [slot, existingPublication] = await Promise.all([findSlot(client, options.slot), findPublication(client, options.publication)]);
  const checks = [primaryCheck(false), ...(await runChecks(client, { ...options, slot, existingPublication }))];
  const ok = checks.every((c) => c.ok);
  const planned: SetupStep[] = [
    { object: 'publication', name: options.publication, result: existingPublication ? 'exists' : 'planned', sql: createPublicationSql(options.publication, options.tables, options.rowFilter) },
    { object: 'slot', name: options.slot, result: slot ? 'exists' : 'planned', sql: createSlotSql(options.slot, options.failoverSlot === true) },
  ];
  if (!ok || options.dryRun) return { ok, dryRun: options.dryRun, checks, steps: planned };
  const steps: SetupStep[] = [];
  for (const step of planned) {
    if (step.result === 'exists') {
      steps.push(step);
      continue;
    }
    if (step.object === 'slot') {
      const { created } = await createSlot(client, options.slot, options.republish, options.failoverSlot === true);
      steps.push({ ...step, result: created ? 'created' : 'exists' });
      continue;
    }
    const { created, publication } = await createPublication(client, options.publication, options.tables, options.rowFilter);
    steps.push({ ...step, result: created ? 'created' : 'exists' });
    if (created) continue;
    // Another session (a second replica's setup) created it since the checks, which found none: checked as one
    // found then, and if it differs from the one asked for, no slot is created for it.
    const raced = await existingPublicationChecks(client, publication, options.tables, options.rowFilter);
    if (raced.some((c) => !c.ok)) return { ok: false, dryRun: false, checks: [...checks, ...raced], steps: [...steps, ...planned.slice(steps.length)] };
  }
  return { ok, dryRun: false, checks, steps };
}
