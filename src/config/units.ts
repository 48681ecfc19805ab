/** Human units in config values: durations (`500ms`, `30s`, `5m`, `1h`) and sizes (`64MiB`, `900KB`). */
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** `bare`: the unit of a number written without one; without it, such a number is refused unless it is 0. */
function parseWithUnits(text: string, units: Record<string, number>, bare?: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!match) return undefined;
  const unit = match[2] || bare;
  if (unit === undefined) return Number(match[1]) === 0 ? 0 : undefined;
  const factor = units[unit.toLowerCase()];
  return factor === undefined ? undefined : Math.round(Number(match[1]) * factor);
}

/**
 * Milliseconds. A unit is required, except for 0: read as milliseconds, a `30` meant as a 30 s grace would be
 * 30 ms, without a word.
 */
export function parseDuration(text: string): number | undefined {
  return parseWithUnits(text, DURATION_UNITS);
}

/** Bytes; a bare number counts as bytes. */
export function parseSize(text: string): number | undefined {
  return parseWithUnits(text, SIZE_UNITS, 'b');
}

export function formatDuration(ms: number): string {
  for (const [unit, factor] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= factor && ms % factor === 0) return `${ms / factor}${unit}`;
  }
  return `${ms}ms`;
}

export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}
