/**
 * The row's headers column (json, jsonb or text holding a JSON object): each top-level key a record header. A
 * string value is sent unquoted; any other value as its JSON text exactly as the column holds it, never through a
 * JavaScript number (`12345678901234567890` and `1.50` stay as written). jsonb columns arrive in PostgreSQL's
 * normalised text already; json and text arrive as inserted. Null values are left out, and so are the `reserved`
 * names (the relay's own headers).
 *
 * Throws a SyntaxError for text that is not JSON, and a TypeError for JSON that is not an object.
 */
export function headerValues(json: string, reserved?: ReadonlySet<string>): Record<string, string> {
  const parsed: unknown = JSON.parse(json); // validates the whole text, so the scan below can trust its structure
  if (parsed === null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new TypeError(`expected a JSON object, found ${Array.isArray(parsed) ? 'an array' : typeof parsed}`);
  // No prototype: a "__proto__" key is a header like any other, not a prototype assignment that drops it.
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, raw] of topLevelMembers(json)) {
    if (reserved?.has(key)) continue;
    if (raw === 'null') delete out[key];
    else out[key] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
  }
  return out;
}

/**
 * [key, value text] of each member of a valid JSON object, in order (a repeated key: the last wins, as JSON.parse).
 * Its helpers are module functions, not closures over `i`: the bundle names every function made (esbuild keepNames),
 * which costs a defineProperty per closure per call, and this runs twice for each logical message.
 */
export function topLevelMembers(json: string): [string, string][] {
  const members: [string, string][] = [];
  let i = json.indexOf('{') + 1;
  for (;;) {
    i = afterSpace(json, i);
    if (json[i] === '}') return members;
    const keyEnd = stringEnd(json, i);
    const key = JSON.parse(json.slice(i, keyEnd)) as string;
    i = afterSpace(json, afterSpace(json, keyEnd) + 1); // past the ':'
    const start = i;
    let depth = 0;
    while (i < json.length) {
      const c = json[i]!;
      if (c === '"') {
        i = stringEnd(json, i);
        continue;
      }
      if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        if (depth === 0) break;
        depth--;
      } else if (c === ',' && depth === 0) break;
      i++;
    }
    members.push([key, json.slice(start, i).trim()]);
    if (json[i] === ',') i++;
  }
}

/** The index of the first character from `i` on that is not white space. */
function afterSpace(json: string, i: number): number {
  while (/\s/.test(json[i] ?? '')) i++;
  return i;
}

/** The index just past the JSON string that starts at `from`. */
function stringEnd(json: string, from: number): number {
  let j = from + 1;
  while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
  return j + 1;
}
