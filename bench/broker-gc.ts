import { existsSync, readFileSync } from 'node:fs';

/** The broker's stop-the-world GC pauses that ended within a time span. */
export interface GcPauses {
  count: number;
  longestMs: number;
  totalMs: number;
}

/** `[1764580000123ms] GC(12) Pause Young (Normal) (G1 Evacuation Pause) 51M->10M(256M) 3.456ms` (-Xlog:gc:…:timemillis). */
const PAUSE = /^\[(\d+)ms\] GC\(\d+\) Pause .* ([\d.]+)ms$/gm;

/** The pauses in the broker's GC log that ended between `fromMs` and `toMs` (epoch ms); undefined without a log. */
export function brokerGcPauses(log: string | undefined, fromMs: number, toMs: number): GcPauses | undefined {
  if (!log || !existsSync(log)) return undefined;
  const pauses = [...readFileSync(log, 'utf8').matchAll(PAUSE)].filter((m) => Number(m[1]) >= fromMs && Number(m[1]) <= toMs).map((m) => Number(m[2]));
  return { count: pauses.length, longestMs: Math.max(0, ...pauses), totalMs: pauses.reduce((a, b) => a + b, 0) };
}
