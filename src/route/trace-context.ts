import type { TupleValues } from '../decode/pgoutput.js';

/**
 * W3C Trace Context carried from the outbox row to the record, so that consumers continue the producer's trace.
 * Found by column name, no setting needed: `traceparent` and `tracestate` (W3C), or Debezium's
 * `tracingspancontext` (java.util.Properties text written by its ActivateTracingSpan helper, holding
 * `traceparent=…` and possibly `tracestate=…`). The headers get their standard names, as OpenTelemetry's Kafka
 * instrumentation reads them. Values are passed through unchecked: a propagator ignores a malformed one, and
 * a trace header is never a reason to stop the stream.
 */
const TRACE_HEADERS = ['traceparent', 'tracestate'] as const;
const DEBEZIUM_SPAN_CONTEXT_COLUMN = 'tracingspancontext';

/** Returns whether the text it added is ASCII (known without a scan, for the record size; false when in doubt). */
export type TraceContextFn = (values: TupleValues, headers: Record<string, string | Buffer>) => boolean;

/** Undefined when the table has none of the columns, so that rows of untraced tables cost nothing. */
export function compileTraceContext(columnIndex: ReadonlyMap<string, number>): TraceContextFn | undefined {
  const w3c = TRACE_HEADERS.flatMap((name) => {
    const i = columnIndex.get(name);
    return i === undefined ? [] : [{ name, i }];
  });
  const debezium = columnIndex.get(DEBEZIUM_SPAN_CONTEXT_COLUMN);
  if (w3c.length === 0 && debezium === undefined) return undefined;
  return (values, headers) => {
    let ascii = true;
    // The dedicated columns win over the Debezium blob, which fills only what they leave empty.
    if (debezium !== undefined) {
      const raw = values.text(debezium);
      if (raw) {
        Object.assign(headers, spanContextHeaders(raw));
        // A \uXXXX escape spells any character in ASCII text.
        ascii = values.isAscii(debezium, raw) && !raw.includes('\\u');
      }
    }
    for (const { name, i } of w3c) {
      const raw = values.text(i);
      const value = raw?.trim();
      if (value) {
        headers[name] = value;
        ascii &&= values.isAscii(i, raw!);
      }
    }
    return ascii;
  };
}

/**
 * `traceparent`/`tracestate` from java.util.Properties text (`key=value` or `key: value`, `#`/`!` comments), with
 * its escapes undone: Properties.store writes `=`, `:`, `#` and `!` in a value as `\=` and so on (a tracestate
 * `rojo=00f067aa0ba902b7` is stored `rojo\=00f067aa0ba902b7`), `\uXXXX` for other characters, and a line ending in
 * a backslash goes on on the next.
 */
export function spanContextHeaders(properties: string): Partial<Record<(typeof TRACE_HEADERS)[number], string>> {
  const out: Partial<Record<(typeof TRACE_HEADERS)[number], string>> = {};
  const lines = properties.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    let line = lines[n]!;
    // An odd number of trailing backslashes continues the line (the next one's leading blanks dropped). The parts
    // are joined once: appending each to the joined text copied all of it again per line, quadratic in a long value.
    if (endsInEscape(line) && n + 1 < lines.length) {
      const parts: string[] = [];
      do {
        parts.push(line.slice(0, -1));
        line = lines[++n]!.replace(/^\s+/, '');
      } while (endsInEscape(line) && n + 1 < lines.length);
      parts.push(line);
      line = parts.join('');
    }
    // The value to the end of the line, its trailing blanks trimmed after: a lazy `(.*?)\s*$` tried the rest of the
    // line at every blank, quadratic in a long run of them (200,000 spaces held the event loop for seconds).
    const match = /^\s*([^#!\s=:][^=:\s]*)\s*[=:]\s*(.*)$/s.exec(line);
    const key = match?.[1] as (typeof TRACE_HEADERS)[number] | undefined;
    const value = match?.[2]!.trimEnd();
    if (key && (TRACE_HEADERS as readonly string[]).includes(key) && value) out[key] = unescapeProperty(value);
  }
  return out;
}

/** An odd number of backslashes at the end; counts only those, not the whole line. */
function endsInEscape(line: string): boolean {
  let i = line.length;
  while (i > 0 && line.charCodeAt(i - 1) === 92) i--;
  return (line.length - i) % 2 === 1;
}

const PROPERTY_ESCAPES: Record<string, string> = { t: '\t', n: '\n', r: '\r', f: '\f' };

function unescapeProperty(value: string): string {
  return value.replace(/\\(u[0-9a-fA-F]{4}|[^])/g, (_, c: string) => (c.length === 5 ? String.fromCharCode(parseInt(c.slice(1), 16)) : (PROPERTY_ESCAPES[c] ?? c)));
}
