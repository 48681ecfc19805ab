import type { BenchDatabase } from './fixture.js';

export interface WriterRun {
  events: number;
  seconds: number;
}

/**
 * Commits events at `rate` per second (or as fast as the connections go when `rate` is undefined) for
 * `seconds`, in transactions of `rowsPerTxn` rows over `connections` concurrent sessions. Pacing is by
 * schedule, not by sleep per transaction, so a slow commit is caught up instead of lowering the rate.
 */
export async function runWriters(db: BenchDatabase, options: { rate?: number; seconds: number; rowsPerTxn: number; connections: number }): Promise<WriterRun> {
  const started = performance.now();
  const endAt = started + options.seconds * 1000;
  let events = 0;
  const writer = async () => {
    for (;;) {
      const now = performance.now();
      if (now >= endAt) return;
      const rate = options.rate;
      if (rate !== undefined) {
        const due = ((now - started) / 1000) * rate;
        if (events >= due) {
          await new Promise((r) => setTimeout(r, Math.max(1, ((events - due) / rate) * 1000)));
          continue;
        }
      }
      events += options.rowsPerTxn;
      await db.insertTransaction(options.rowsPerTxn);
    }
  };
  await Promise.all(Array.from({ length: options.connections }, writer));
  return { events, seconds: (performance.now() - started) / 1000 };
}
