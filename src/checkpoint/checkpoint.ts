import { RelayError } from '../errors.js';
import { formatLsn, isLsn, parseLsn, type Lsn } from '../lsn.js';
import type { WindowSample } from './window-samples.js';

/** The delivered position of one slot, as stored in the checkpoint topic (key = slot name). */
export interface Checkpoint {
  slot: string;
  /** commitEndLsn of the newest transaction delivered with every earlier one: where a normal restart resumes. */
  lsn: Lsn;
  /** Commit time of that transaction (ms since the epoch), when known. */
  commitTimeMs: number | undefined;
  writtenAtMs: number;
  guarantee: string;
  /**
   * The replay window in force when it was written (`6h`, `2GiB`; `0` for none): the window is state of the slot,
   * so a later run or replay keeps it unless told otherwise. Undefined in records of versions that did not record it.
   */
  replayWindow?: string;
  /**
   * A time window's positions delivered but not reported to PostgreSQL yet, with when each was delivered (oldest
   * first, at most RECORDED_SAMPLES, none above `lsn`): the next start reports them on the same schedule. Undefined
   * without a time window, in records of versions that did not record them, and when the stored ones are unreadable.
   */
  replaySamples?: WindowSample[];
  /**
   * The PostgreSQL system identifier of the server whose WAL `lsn` is in (a promoted streaming replica keeps it).
   * Undefined in records of versions that did not record it.
   */
  systemId?: string;
  /**
   * The timeline of that server the position was confirmed on (src/source/timeline.ts): a promoted standby shares
   * the old primary's WAL only up to where it left that timeline. Undefined in records of versions that did not
   * record it.
   */
  timeline?: number;
}

interface StoredCheckpoint {
  slot: string;
  lsn: string;
  commitTime: string | null;
  writtenAt: string;
  guarantee: string;
  replayWindow?: string;
  replayPending?: StoredSample[];
  systemId?: string;
  timeline?: number;
}

interface StoredSample {
  lsn: string;
  deliveredAt: string;
}

/** JSON, so that a person reading the topic with kafka-console-consumer understands it. */
export function encodeCheckpoint(checkpoint: Checkpoint): Buffer {
  const stored: StoredCheckpoint = {
    slot: checkpoint.slot,
    lsn: formatLsn(checkpoint.lsn),
    commitTime: checkpoint.commitTimeMs === undefined ? null : new Date(checkpoint.commitTimeMs).toISOString(),
    writtenAt: new Date(checkpoint.writtenAtMs).toISOString(),
    guarantee: checkpoint.guarantee,
    ...(checkpoint.replayWindow === undefined ? {} : { replayWindow: checkpoint.replayWindow }),
    ...(checkpoint.replaySamples?.length ? { replayPending: checkpoint.replaySamples.map((s) => ({ lsn: formatLsn(s.lsn), deliveredAt: new Date(s.atMs).toISOString() })) } : {}),
    ...(checkpoint.systemId === undefined ? {} : { systemId: checkpoint.systemId }),
    ...(checkpoint.timeline === undefined ? {} : { timeline: checkpoint.timeline }),
  };
  return Buffer.from(JSON.stringify(stored));
}

export function decodeCheckpoint(value: Buffer, topic: string): Checkpoint {
  let stored: Partial<StoredCheckpoint>;
  try {
    stored = JSON.parse(value.toString('utf8')) as Partial<StoredCheckpoint>;
  } catch (err) {
    throw invalid(topic, `not JSON (${(err as Error).message})`);
  }
  // JSON null (a tool's "deletion" written as a value, not a tombstone) is JSON too: reading its fields threw a
  // TypeError, an INTERNAL failure of the start rather than this refusal and its fix.
  if (stored === null || typeof stored !== 'object') throw invalid(topic, 'not a JSON object');
  if (typeof stored.slot !== 'string' || typeof stored.lsn !== 'string' || !isLsn(stored.lsn)) throw invalid(topic, 'slot or lsn missing');
  const replaySamples = readSamples(stored.replayPending);
  return {
    slot: stored.slot,
    lsn: parseLsn(stored.lsn),
    // A time of another form (epoch milliseconds, edited) as unknown: NaN made every description of the record
    // (the start's 'checkpoint read' line, status) throw, and the relay could not start at all (INTERNAL).
    commitTimeMs: readTime(stored.commitTime),
    writtenAtMs: readTime(stored.writtenAt) ?? 0,
    guarantee: stored.guarantee ?? 'unknown',
    // One of another type (a number, edited or of another version) kept as its JSON: dropped, it was taken as no
    // window and released the WAL the window held; kept, the start refuses it as a window it cannot read.
    ...(stored.replayWindow === undefined ? {} : { replayWindow: typeof stored.replayWindow === 'string' ? stored.replayWindow : JSON.stringify(stored.replayWindow) }),
    ...(replaySamples === undefined ? {} : { replaySamples }),
    ...(typeof stored.systemId === 'string' ? { systemId: stored.systemId } : {}),
    ...(Number.isInteger(stored.timeline) && stored.timeline! > 0 ? { timeline: stored.timeline } : {}),
  };
}

/** An ISO time as ms since the epoch; undefined when missing or unreadable. */
function readTime(stored: unknown): number | undefined {
  const ms = typeof stored === 'string' ? Date.parse(stored) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * The recorded samples, or undefined when any is malformed (a foreign or edited record): the window then starts
 * as it did before samples were recorded, from the slot's position, which holds more WAL but never less.
 */
function readSamples(stored: unknown): WindowSample[] | undefined {
  if (!Array.isArray(stored)) return undefined;
  const samples: WindowSample[] = [];
  for (const item of stored as unknown[]) {
    const { lsn, deliveredAt } = (item ?? {}) as Partial<Record<keyof StoredSample, unknown>>;
    const atMs = typeof deliveredAt === 'string' ? Date.parse(deliveredAt) : NaN;
    if (typeof lsn !== 'string' || !isLsn(lsn) || !Number.isFinite(atMs)) return undefined;
    samples.push({ lsn: parseLsn(lsn), atMs });
  }
  return samples;
}

function invalid(topic: string, why: string): RelayError {
  return new RelayError('CHECKPOINT_FAILED', `the checkpoint topic "${topic}" holds a record the relay cannot read: ${why}`, {
    hint: 'the topic must only be written by outbox-relay; point checkpoint.topic at a topic of its own',
  });
}

/** For logs and `status`. */
export function describeCheckpoint(checkpoint: Checkpoint): Record<string, string | null> {
  return {
    lsn: formatLsn(checkpoint.lsn),
    commitTime: checkpoint.commitTimeMs === undefined ? null : new Date(checkpoint.commitTimeMs).toISOString(),
    writtenAt: new Date(checkpoint.writtenAtMs).toISOString(),
    guarantee: checkpoint.guarantee,
    replayWindow: checkpoint.replayWindow ?? null,
    systemId: checkpoint.systemId ?? null,
    timeline: checkpoint.timeline === undefined ? null : String(checkpoint.timeline),
  };
}
