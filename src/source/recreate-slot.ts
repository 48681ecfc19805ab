// How the fixes name making the slot again: its own module, since slot-lost.ts and publication-as-it-was.ts (which
// slot-lost.ts imports) both need it.

/**
 * How to make the slot again. `failover`: whether the old one was a PostgreSQL 17 failover slot (undefined: not
 * known where the error arose). A plain new slot in its place is not synced to standbys: the next failover loses
 * it, which nothing says until then, so the flag that keeps the property is named.
 */
export function recreateSlot(command: 'setup' | 'slot create', failover: boolean | null | undefined): string {
  if (failover === true) return `outbox-relay ${command} --failover-slot (it was a failover slot: without the flag standbys no longer sync it)`;
  if (failover === undefined) return `outbox-relay ${command} (with --failover-slot if it was a PostgreSQL 17 failover slot)`;
  return `outbox-relay ${command}`;
}
