import pg from 'pg';
import { RelayError } from '../errors.js';
import { formatLsn, isLsn, parseLsn, type Lsn } from '../lsn.js';
import type { ReplicationStream } from './replication-stream.js';

/**
 * A position and the timeline of the server it was confirmed on. A promoted standby (or a point-in-time restore)
 * continues on a new timeline from the point where it left the old one: WAL up to that point is shared, WAL past
 * it on the old timeline is not in the new server's history, although the new server writes the same LSNs again
 * with other transactions. A relay resuming at such a position would confirm it and pass over those transactions;
 * while the new server's WAL end was below it that showed (CHECKPOINT_AHEAD_OF_WAL), once past it nothing did.
 * `timeline` is undefined where it is not known: a checkpoint of a version that did not record it, a --start-lsn.
 */
export interface TimelinePosition {
  lsn: Lsn;
  timeline: number | undefined;
  /** The commit time of the last transaction delivered up to `lsn`, where known: a refusal's fix names the republish from it. */
  commitTimeMs?: number | undefined;
}

/**
 * The server's current timeline and where each earlier timeline of its history ended (its switchpoint); undefined
 * switchpoints where the server could not send its history file (removed by hand): positions of other timelines
 * are then not checked, as before timelines were.
 */
export interface TimelineHistory {
  timeline: number;
  switchpoints: Map<number, Lsn> | undefined;
}

/** IDENTIFY_SYSTEM, then TIMELINE_HISTORY of the current timeline unless it is the first (which has no history file). */
export async function readTimelineHistory(stream: Pick<ReplicationStream, 'query'>): Promise<TimelineHistory> {
  const [identity] = await stream.query<{ timeline: number | string }>('IDENTIFY_SYSTEM');
  const timeline = Number(identity?.timeline);
  if (!Number.isInteger(timeline) || timeline < 1) throw new RelayError('PG_PROTOCOL', `IDENTIFY_SYSTEM answered timeline ${String(identity?.timeline)}`);
  if (timeline === 1) return { timeline, switchpoints: new Map() };
  let file: { content: string | Buffer } | undefined;
  try {
    [file] = await stream.query<{ content: string | Buffer }>(`TIMELINE_HISTORY ${timeline}`);
  } catch (err) {
    // The server's own refusal (58P01 for a missing file); a lost connection is the session's failure.
    if (err instanceof pg.DatabaseError) return { timeline, switchpoints: undefined };
    throw err;
  }
  // Labelled text or bytea depending on the server version; raw bytes either way.
  const content = Buffer.isBuffer(file?.content) ? file.content.toString('utf8') : String(file?.content ?? '');
  return { timeline, switchpoints: parseTimelineHistory(content) };
}

/** A history file: `<parent timeline>\t<switchpoint LSN>\t<reason>` per line, `#` comments (timeline.c). */
export function parseTimelineHistory(content: string): Map<number, Lsn> {
  const switchpoints = new Map<number, Lsn>();
  for (const line of content.split('\n')) {
    const [tli, lsn] = line.trim().split(/\s+/);
    if (!tli || tli.startsWith('#') || !/^\d+$/.test(tli) || !lsn || !isLsn(lsn)) continue;
    switchpoints.set(Number(tli), parseLsn(lsn));
  }
  return switchpoints;
}

/**
 * Why `position` is not in this server's WAL history, or undefined when it is (or its timeline is unknown). A
 * position on the current timeline is in it up to the WAL end, which the callers check; one on an earlier timeline
 * up to that timeline's switchpoint; one on a timeline this server never had (a sibling, a later one) not at all.
 */
export function offHistory(position: TimelinePosition, server: TimelineHistory): string | undefined {
  const { lsn, timeline } = position;
  if (timeline === undefined || timeline === server.timeline || server.switchpoints === undefined) return undefined;
  const switchpoint = server.switchpoints.get(timeline);
  if (switchpoint === undefined) return `timeline ${timeline} is not in the history of this PostgreSQL, which is on timeline ${server.timeline}`;
  if (lsn <= switchpoint) return undefined;
  return `this PostgreSQL (timeline ${server.timeline}) left timeline ${timeline} at ${formatLsn(switchpoint)}: the WAL past it is another server's`;
}
