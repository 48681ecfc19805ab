/**
 * `Order*` → a matcher: `*` stands for any run of characters, everything else is literal; whole-value match.
 * Matched by scanning, not with a RegExp of `.*`s: the value is row data, and such a RegExp backtracks
 * polynomially in its length (`*a*b*c` took 2.5 s against a 4,000-character type, each doubling eight times that),
 * which held the event loop, and so the replication connection, on a single row. The literal parts are found
 * left to right, each at its first place after the one before: if any placement matches, that one does.
 */
export function compileGlob(pattern: string): (value: string) => boolean {
  if (!pattern.includes('*')) return (value) => value === pattern;
  const parts = pattern.split('*');
  const head = parts[0]!;
  const tail = parts[parts.length - 1]!;
  const middle = parts.slice(1, -1).filter((part) => part !== '');
  return (value) => {
    if (value.length < head.length + tail.length || !value.startsWith(head) || !value.endsWith(tail)) return false;
    const end = value.length - tail.length;
    let at = head.length;
    for (const part of middle) {
      const found = value.indexOf(part, at);
      if (found < 0 || found + part.length > end) return false;
      at = found + part.length;
    }
    return true;
  };
}

/** True when `value` matches any of `patterns`. */
export function compileGlobList(patterns: readonly string[]): (value: string) => boolean {
  const matchers = patterns.map(compileGlob);
  return (value) => matchers.some((m) => m(value));
}
