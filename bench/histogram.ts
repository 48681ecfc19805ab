/** A Prometheus histogram read from exposition text: cumulative counts per upper bound, +Inf last. */
export type Histogram = { le: number; count: number }[];

/** The buckets of the unlabelled histogram `name` in `text` (empty if absent). */
export function readHistogram(text: string, name: string): Histogram {
  const pattern = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, 'gm');
  return [...text.matchAll(pattern)].map((m) => ({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), count: Number(m[2]) }));
}

/** The value of the unlabelled gauge `name` in `text` (NaN if absent). */
export function readGauge(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Observations between two readings of the same histogram. */
export function histogramDelta(after: Histogram, before: Histogram): Histogram {
  return after.map((b, i) => ({ le: b.le, count: b.count - (before[i]?.count ?? 0) }));
}

/**
 * The q-quantile in ms, interpolated linearly within its bucket as Prometheus' histogram_quantile() does: exact
 * only to the bucket's bounds. NaN without observations; the last finite bound if it lies in +Inf.
 */
export function histogramQuantileMs(h: Histogram, q: number): number {
  const total = h.at(-1)?.count ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const b of h) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lower * 1000;
      return (lower + ((b.le - lower) * (rank - below)) / Math.max(1, b.count - below)) * 1000;
    }
    lower = b.le;
    below = b.count;
  }
  return lower * 1000;
}
