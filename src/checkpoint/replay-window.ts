import { formatDuration, formatSize, parseDuration, parseSize } from '../config/units.js';
import { RelayError } from '../errors.js';
import { maxLsn, type Lsn } from '../lsn.js';
import { thinSamples, type WindowSample } from './window-samples.js';

/** How far the slot's confirmed position is kept behind the delivered one: a stretch of time or of WAL. */
export type ReplayWindow = { kind: 'duration'; ms: number } | { kind: 'size'; bytes: number };
/** A window setting: `none` (`0`) releases a window recorded by an earlier run. */
export type ReplayWindowSetting = ReplayWindow | { kind: 'none' };

/**
 * `30m`, `2h`, `1d` (time) or `512MiB`, `2GB` (WAL). A unit is required: a bare number could mean either, except
 * `0`, which asks for no window (as does any zero amount).
 * Duration units (ms s m h d) and size units (b kb mb gb kib mib gib) do not overlap.
 */
export function parseReplayWindow(text: string): ReplayWindowSetting | undefined {
  if (/^\s*0\s*$/.test(text)) return { kind: 'none' };
  if (!/[a-zA-Z]\s*$/.test(text)) return undefined;
  // Units are read in any case, and a window is a duration or a size: `512M`, meant as megabytes as PostgreSQL
  // and Kubernetes write them, was 512 minutes of WAL kept. Refused, with the form in the error (512MB, 512m).
  if (/^\s*\d+(?:\.\d+)?\s*M\s*$/.test(text)) return undefined;
  const ms = parseDuration(text);
  if (ms !== undefined) return ms > 0 ? { kind: 'duration', ms } : { kind: 'none' };
  const bytes = parseSize(text);
  if (bytes !== undefined) return bytes > 0 ? { kind: 'size', bytes } : { kind: 'none' };
  return undefined;
}

/** `6h`, `2GiB`, or `0`: what parseReplayWindow reads back. */
export function formatReplayWindow(window: ReplayWindowSetting): string {
  if (window.kind === 'none') return '0';
  return window.kind === 'duration' ? formatDuration(window.ms) : formatSize(window.bytes);
}

/**
 * Why at-most-once refuses a window, set or recorded: PostgreSQL would get the window's older position, and a
 * restart after a crash would send again what was handed off since the checkpoint.
 */
export function atMostOnceWindowRefused(window: ReplayWindowSetting, from: 'set by replayWindow' | 'recorded in the checkpoint', fix: string): RelayError {
  return new RelayError(
    'CONFIG_INVALID',
    `at-most-once cannot keep a replay window (${formatReplayWindow(window)}, ${from}): PostgreSQL would get the window's older position, so a restart after a crash would start at the checkpoint, written once a second, and send the events handed off since it a second time`,
    { hint: fix },
  );
}

/** The newest position delivered in the sample's period, and when. */
interface Sample extends WindowSample {
  /** When the period began. */
  sinceMs: number;
}

/**
 * The flush position reported to PostgreSQL when a replay window is configured. It is derived from the
 * delivered (confirmed) position and is never ahead of it, so the acknowledgement rule still bounds it; it only
 * lags further. For a time window, delivered positions are sampled (at most ~1000 samples per window) and the
 * newest one at least `ms` old is reported. The samples not reported yet go into every checkpoint record (pending)
 * and come back at the next start (seed): kept only in memory, each restart stamped the positions the window held
 * with the restart's time, and a relay restarted more often than the window never moved the slot at all.
 */
export class ReplayWindowPosition {
  private delivered: Lsn;
  private reported: Lsn;
  private readonly samples: Sample[] = [];
  private readonly sampleEveryMs: number;

  constructor(private readonly window: ReplayWindow) {
    this.delivered = 0n;
    this.reported = 0n;
    this.sampleEveryMs = window.kind === 'duration' ? Math.max(100, Math.floor(window.ms / 1000)) : 0;
  }

  /**
   * The slot's confirmed position: nothing is reported below it (a PostgreSQL release whose
   * LogicalConfirmReceivedLocation sets confirmed_flush without comparing moves the slot back to a lower flush; one
   * with the comparison ignores it). Raised at every session's start too: another instance that held the slot meanwhile moved
   * it. Samples at or below it are released already: recorded in a checkpoint, they would say the window still holds them.
   */
  raiseFloor(lsn: Lsn): void {
    this.reported = maxLsn(this.reported, lsn);
    this.delivered = maxLsn(this.delivered, lsn);
    // Not by position order: a replay below the checkpoint delivers below the samples the checkpoint recorded.
    this.samples.splice(0, this.samples.length, ...this.samples.filter((s) => s.lsn > this.reported));
  }

  /**
   * Samples a checkpoint recorded (see pending), before anything is confirmed: they are reported at their original
   * times. Only those above the slot's position (raiseFloor; below it they change nothing) and at or below `upTo`,
   * the checkpoint's position: no sample claims more was delivered than the checkpoint does.
   */
  seed(samples: readonly WindowSample[], upTo: Lsn): void {
    if (this.window.kind === 'size') return;
    const kept = samples.filter((s) => s.lsn > this.reported && s.lsn <= upTo).sort((a, b) => a.atMs - b.atMs);
    // A recorded sample's period is over: what this run delivers starts a sample of its own rather than moving a
    // recorded position to a later one.
    for (const { lsn, atMs } of kept) this.samples.push({ lsn, atMs, sinceMs: -Infinity });
  }

  /**
   * The samples not reported yet, at or below `upTo` (the position the checkpoint records: one above it would claim
   * a delivery the record does not), thinned for the record (thinSamples: never earlier than they could be).
   */
  pending(upTo: Lsn): WindowSample[] {
    return thinSamples(this.samples.filter((s) => s.lsn <= upTo));
  }

  /** A newly confirmed (delivered) position. */
  confirmed(lsn: Lsn, nowMs: number): void {
    if (lsn <= this.delivered) return;
    this.delivered = lsn;
    if (this.window.kind === 'size') return;
    // One sample per period (by when it began) holds the period's newest position and when that one was
    // delivered, which is what must be `ms` old before it is reported: stamped with the period's start instead,
    // a position was reported up to a period early.
    const last = this.samples.at(-1);
    if (last && nowMs - last.sinceMs < this.sampleEveryMs) {
      last.lsn = lsn;
      last.atMs = nowMs;
    } else this.samples.push({ lsn, atMs: nowMs, sinceMs: nowMs });
  }

  /** What to report as write/flush/apply now. */
  position(nowMs: number): Lsn {
    if (this.window.kind === 'size') {
      const behind = this.delivered - BigInt(this.window.bytes);
      this.reported = maxLsn(this.reported, behind);
    } else {
      const cutoff = nowMs - this.window.ms;
      let sample: Sample | undefined;
      // A recorded sample above what this run delivered (a replay below the checkpoint) waits until it is delivered
      // again: the reported position never passes the delivered one.
      while ((sample = this.samples[0]) !== undefined && sample.atMs <= cutoff && sample.lsn <= this.delivered) {
        this.reported = maxLsn(this.reported, sample.lsn);
        this.samples.shift();
      }
    }
    return this.reported;
  }

  /** WAL bytes between the reported and the delivered position: what the window pins beyond normal. */
  get retainedBytes(): number {
    return Number(this.delivered - this.reported);
  }
}
