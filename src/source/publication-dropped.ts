import { createAsItWas, seenPublicationSql, type KnownPublication } from './publication-as-it-was.js';
import { republishCommand, type RelayNames } from './republish-command.js';
import { recreateSlot, slotFlag } from './recreate-slot.js';

/**
 * The way on for a slot (`scope`'s, with its publication and tables) that cannot stream with its publication, dropped while the slot existed (re-created since or
 * not): no slot streams the rows written while the publication did not exist, so a new one, then republish, from
 * `since` where known. Every place that finds the publication gone (a session's pre-flight, the stream's error, the
 * publication watch) says it here, with what `known` has of it as the relay last saw it (seenPublicationSql): the fix
 * creates it as it was, then setup makes the slot.
 */
export function newSlotThenRepublish(failover: boolean | null | undefined, scope: RelayNames, known: KnownPublication | undefined, since?: string): string {
  const sql = seenPublicationSql(scope.publication, known);
  const create = sql === undefined ? `run ${recreateSlot('setup', failover, scope)} (the publication, then the slot)` : createAsItWas(sql, failover, scope);
  const resend =
    since === undefined
      ? `the rows written since the slot was created or the publication dropped: ${republishCommand('<that time>', scope)}`
      : `what was written since: ${republishCommand(since, scope)} (consumers dedupe on the id header)`;
  return `drop the slot (outbox-relay slot drop${slotFlag(scope.slot)}), ${create}, start the relay, then re-send ${resend}`;
}
