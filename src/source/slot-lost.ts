import { RelayError } from '../errors.js';
import { formatLsn, type Lsn } from '../lsn.js';
import { createAsItWas, seenPublicationSql, type KnownPublication } from './publication-as-it-was.js';
import { recreateSlot, slotFlag } from './recreate-slot.js';
import { republishCommand, type RelayNames, type RepublishScope } from './republish-command.js';
import type { TimelinePosition } from './timeline.js';

/**
 * Why PostgreSQL invalidated a slot (wal_status 'lost'), as pg_replication_slots.invalidation_reason names it
 * (PostgreSQL 17+), plus 'conflicting', PostgreSQL 16's word for rows_removed or wal_level_insufficient. Up to 15
 * WAL removal was the only cause; from 16 every cause shows as 'lost', so the cause decides the fix.
 */
export type InvalidationReason = 'wal_removed' | 'rows_removed' | 'wal_level_insufficient' | 'idle_timeout' | 'conflicting';

/**
 * The reason of a lost slot `s` of pg_replication_slots, NULL for any other, in one expression for every version:
 * through to_jsonb(s) a column the server does not have reads NULL instead of failing the query. 17+ names it
 * (invalidation_reason; NULL with 'lost' only while a checkpoint removes WAL it has not invalidated the slot for
 * yet: WAL removal too). 16 has only `conflicting`, which is true for any invalidated logical slot, WAL removal
 * included (measured on 16.16; 17 narrowed it), so it tells nothing: there WAL removal is told by the restart_lsn
 * it clears (as 13 to 15, where it is the only cause), and a lost slot that keeps it conflicted with recovery.
 */
export const INVALIDATION_REASON_SQL = `CASE WHEN s.wal_status <> 'lost' THEN NULL
       WHEN to_jsonb(s) ? 'invalidation_reason' THEN COALESCE(to_jsonb(s) ->> 'invalidation_reason', 'wal_removed')
       WHEN to_jsonb(s) ? 'conflicting' AND s.restart_lsn IS NOT NULL THEN 'conflicting'
       ELSE 'wal_removed' END AS invalidation_reason`;

const STANDBY_ROWS = 'hot_standby_feedback = on on the standby and primary_slot_name naming a physical slot on the primary, so that VACUUM there keeps the rows the slot needs';
const WAL_LEVEL = 'keep wal_level = logical on the primary';

/** What happened, and how to keep it from happening again, per reason. */
const CAUSES: Record<InvalidationReason, { cause: string; avoid: string }> = {
  wal_removed: {
    cause: 'PostgreSQL removed WAL it still needed (max_slot_wal_keep_size exceeded)',
    avoid: 'raise max_slot_wal_keep_size and alert on the slot lag metric',
  },
  idle_timeout: {
    cause: 'no client streamed from it for longer than idle_replication_slot_timeout (a relay stopped, or halted, leaves its slot idle)',
    avoid: 'keep the relay running and alert when it halts or stops (a halted relay does not stream, so its slot is idle), or raise idle_replication_slot_timeout above the longest time the relay may be down (0 turns it off)',
  },
  rows_removed: {
    cause: 'the primary removed rows it still needed (a slot on a standby, or synchronized to one and used since its promotion)',
    avoid: STANDBY_ROWS,
  },
  wal_level_insufficient: {
    cause: 'wal_level on the primary went below logical (a slot on a standby, or synchronized to one and used since its promotion)',
    avoid: WAL_LEVEL,
  },
  conflicting: {
    cause: 'it conflicted with recovery on a standby: rows_removed or wal_level_insufficient (PostgreSQL 16 does not say which)',
    avoid: `${STANDBY_ROWS}; and ${WAL_LEVEL}`,
  },
};

function isKnown(reason: string): reason is InvalidationReason {
  return Object.hasOwn(CAUSES, reason);
}

/**
 * PG_SLOT_LOST for `reason` as the server reported it; null or undefined when it is not known (a failed
 * START_REPLICATION says only that the slot is invalidated: `detail` carries the server's words then).
 * `failover`: as recreateSlot's. `scope`: the relay's publication and tables, named in the republish (republishCommand).
 */
export function slotLostError(slot: string, scope: RepublishScope, reason: string | null | undefined, detail?: string, failover?: boolean | null): RelayError {
  const known = reason ? (isKnown(reason) ? CAUSES[reason] : undefined) : undefined;
  const named = reason ? ` (invalidation_reason ${reason})` : '';
  const cause = known?.cause ?? 'PostgreSQL invalidated it';
  const avoid = known?.avoid ?? 'outbox-relay slot status shows why (invalidation_reason); docs/operations.md "Slot lost" says what prevents each cause';
  return new RelayError('PG_SLOT_LOST', `replication slot "${slot}" was invalidated${named}: ${cause}${detail ? `: ${detail}` : ''}`, {
    hint:
      `the events committed since the slot's confirmed position exist only in the outbox table now. Recovery: ` +
      `1) outbox-relay slot drop --force${slotFlag(slot)}; 2) ${recreateSlot('slot create', failover, { slot, publication: scope.publication })}; 3) restart the relay; ` +
      `4) re-send the gap from the outbox table with ${republishCommand(UNKNOWN_SINCE, scope)}. ` +
      `To avoid it: ${avoid}`,
    details: { invalidationReason: reason ?? null },
  });
}

/**
 * PG_SLOT_LOST (`lost`) with its republish's --since filled in from the commit time of the last delivered event,
 * where the relay knows it (the checkpoint it read, or its own deliveries): the pre-flight and the stream's
 * classification, which build the error, do not. Unchanged without one.
 */
export function slotLostSince(lost: RelayError, commitTimeMs: number | undefined): RelayError {
  if (commitTimeMs === undefined || lost.hint === undefined) return lost;
  const hint = lost.hint.replace(`--since ${UNKNOWN_SINCE}`, `--since ${republishSince(commitTimeMs, UNKNOWN_SINCE)}`);
  return new RelayError(lost.code, lost.message, { cause: lost.cause, retriable: lost.retriable, hint, details: { ...lost.details, checkpointCommitTime: new Date(commitTimeMs).toISOString() } });
}

/** republish's --since where the time of the last delivered event is not known. */
const UNKNOWN_SINCE = '<time of the last delivered event>';

/** How far before the last delivered commit a republish starts: clocks and the checkpoint's lag, covered by dedupe on the id. */
const REPUBLISH_MARGIN_MS = 60_000;

/** republish's --since for a gap after the last delivered commit at `commitTimeMs`; `unknown` where that is not known. */
export function republishSince(commitTimeMs: number | undefined, unknown: string): string {
  return commitTimeMs === undefined ? unknown : new Date(commitTimeMs - REPUBLISH_MARGIN_MS).toISOString();
}

/**
 * PG_SLOT_MISSING (`missing`) for a slot whose checkpoint exists: it was there and delivered, so it was lost (a
 * failover to a server without it, a drop), and a new slot streams only what is committed after it is created. The
 * plain fix (`setup`) then passed over everything committed between the checkpoint and the new slot, silently;
 * this one names the runbook's steps with the checkpoint's commit time. When the pre-flight found the publication
 * gone too (details.publicationMissing), setup would create it without the column lists and row filters the relay
 * saw on it (`known`), so the step creates it as it was (as the pre-flight's own fix does), then the slot. `scope`: the
 * relay's slot, publication and tables, named in each printed command.
 */
export function missingSlotDelivered(missing: RelayError, topic: string, checkpoint: { lsn: Lsn; commitTimeMs: number | undefined }, scope: RelayNames, known?: KnownPublication): RelayError {
  const committed = checkpoint.commitTimeMs === undefined ? '' : `, commit time ${new Date(checkpoint.commitTimeMs).toISOString()}`;
  const since = republishSince(checkpoint.commitTimeMs, UNKNOWN_SINCE);
  const asItWas = missing.details.publicationMissing === true ? seenPublicationSql(scope.publication, known) : undefined;
  const remake = asItWas === undefined ? recreateSlot('setup', undefined, scope) : createAsItWas(asItWas, undefined, scope);
  return new RelayError(
    'PG_SLOT_MISSING',
    `${missing.message}, but the checkpoint topic "${topic}" holds its delivered position (${formatLsn(checkpoint.lsn)}${committed}): the slot was lost (a failover to a server that did not have it, or a drop), and a new one streams only what is committed after it is created`,
    {
      hint:
        `the events committed since that position exist only in the outbox table now. Recovery (docs/operations.md, failover): ` +
        `1) point checkpoint.topic (--checkpoint-topic) at a new topic (the old one holds the lost slot's position); 2) ${remake}; ` +
        `3) start the relay; 4) re-send the gap: ${republishCommand(since, scope)} (consumers dedupe on the id header)`,
      details: { ...missing.details, checkpointLsn: formatLsn(checkpoint.lsn), checkpointCommitTime: checkpoint.commitTimeMs === undefined ? null : new Date(checkpoint.commitTimeMs).toISOString() },
    },
  );
}

/**
 * PG_SLOT_RECREATED: the slot is ahead of the relay's position (`position`: a checkpoint's, or this process's own),
 * and was made on this server after the server left that position's timeline: setup made it again after a failover
 * to a server that did not have it. It streams only what is committed from its position (`slotLsn`) on; what this
 * server holds between the two (the events the standby had received but the relay had not delivered, and those
 * committed here before the slot was made) only the outbox table has.
 */
export function slotRecreatedError(slot: string, scope: RepublishScope, position: TimelinePosition, slotLsn: Lsn, timeline: number): RelayError {
  const committed = position.commitTimeMs === undefined ? '' : `, commit time ${new Date(position.commitTimeMs).toISOString()}`;
  return new RelayError(
    'PG_SLOT_RECREATED',
    `replication slot "${slot}" is at ${formatLsn(slotLsn)} on timeline ${timeline}, and was made on this server after it left timeline ${position.timeline}, where the relay had delivered up to ${formatLsn(position.lsn)}${committed}: a slot made again after a failover (setup on the promoted standby) streams only what is committed after it was made, so the events between the two positions were never streamed; nothing was confirmed`,
    {
      hint:
        `the events committed between those positions exist only in the outbox table. Recovery (docs/operations.md, failover): ` +
        `1) point checkpoint.topic (--checkpoint-topic) at a new topic (the old one holds the old primary's position); 2) start the relay (it starts at the slot); ` +
        `3) re-send the gap: ${republishCommand(republishSince(position.commitTimeMs, UNKNOWN_SINCE), scope)} (consumers dedupe on the id header)`,
      details: { slotLsn: formatLsn(slotLsn), currentTimeline: timeline, resumeLsn: formatLsn(position.lsn), timeline: position.timeline ?? null },
    },
  );
}
