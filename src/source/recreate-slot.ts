import { shellWord, tableSettingFlags, type RelayNames } from './republish-command.js';

// How the fixes name making the slot again: its own module, since slot-lost.ts and publication-as-it-was.ts (which
// slot-lost.ts imports) both need it.

/**
 * How to make the slot again. `failover`: whether the old one was a PostgreSQL 17 failover slot (undefined: not
 * known where the error arose). A plain new slot in its place is not synced to standbys: the next failover loses
 * it, which nothing says until then, so the flag that keeps the property is named. `names`: the relay's slot and
 * publication, printed as flags where the command is pasted in another shell than the relay's (its settings may
 * have come from its flags): without them it would make the default slot and check the default publication. setup
 * also gets the relay's tables (tableSettingFlags): it builds the publication from them.
 */
export function recreateSlot(command: 'setup' | 'slot create', failover: boolean | null | undefined, names: RelayNames): string {
  const tables = command === 'setup' ? tableSettingFlags(names) : '';
  const run = `outbox-relay ${command}${slotFlag(names.slot)} --publication ${shellWord(names.publication)}${tables}`;
  if (failover === true) return `${run} --failover-slot (it was a failover slot: without the flag standbys no longer sync it)`;
  if (failover === undefined) return `${run} (with --failover-slot if it was a PostgreSQL 17 failover slot)`;
  return run;
}

/** A printed command's --slot: pasted elsewhere, a slot command without it acts on the default slot, maybe another relay's. */
export function slotFlag(slot: string): string {
  return ` --slot ${shellWord(slot)}`;
}
