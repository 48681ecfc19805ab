import type { BenchDatabase } from './fixture.js';

export interface WriterRun {
  events: number;
  seconds: number;
}

/**
 * Commits events at `rate` per second for `seconds`, in transactions of `rowsPerTxn` rows over `connections`
 * concurrent sessions, each pacing its share of the rate inside PostgreSQL (`bench_paced`).
 */
export async function runWriters(db: BenchDatabase, options: { rate: number; seconds: number; rowsPerTxn: number; connections: number }): Promise<WriterRun> {
  const started = performance.now();
  const counts = await Promise.all(Array.from({ length: options.connections }, () => db.insertPaced(options.rate / options.connections, options.rowsPerTxn, options.seconds)));
  return { events: counts.reduce((a, b) => a + b, 0), seconds: (performance.now() - started) / 1000 };
}
