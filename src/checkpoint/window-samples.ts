import type { Lsn } from '../lsn.js';

/** A delivered position and when it was delivered (ms since the epoch): what a time window reports once it is old enough. */
export interface WindowSample {
  lsn: Lsn;
  atMs: number;
}

/**
 * At most this many samples go into a checkpoint record: enough to keep a restarted relay's reported position
 * moving through the window (one step per 1/32 of it), few enough to keep the record a short line of JSON.
 */
export const RECORDED_SAMPLES = 32;

/**
 * `samples` (oldest first) cut to at most `max`, each dropped one merged into the one after it, whose position and
 * time it takes: a position is then reported later than it could be, never earlier. The newest sample is always kept.
 */
export function thinSamples(samples: readonly WindowSample[], max = RECORDED_SAMPLES): WindowSample[] {
  if (samples.length <= max) return samples.map(({ lsn, atMs }) => ({ lsn, atMs }));
  const kept: WindowSample[] = [];
  for (let group = 1; group <= max; group++) {
    const { lsn, atMs } = samples[Math.ceil((group * samples.length) / max) - 1]!;
    kept.push({ lsn, atMs });
  }
  return kept;
}
