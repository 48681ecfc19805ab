/** The middle item by `key` (the lower middle for an even count): what the bench reports of repeated runs. */
export function medianBy<T>(items: readonly T[], key: (item: T) => number): T {
  return [...items].sort((a, b) => key(a) - key(b))[Math.floor((items.length - 1) / 2)]!;
}
