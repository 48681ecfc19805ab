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

export type TraceContextFn = (values: TupleValues, headers: Record<string, string | Buffer>) => void;

/** Undefined when the table has none of the columns, so that rows of untraced tables cost nothing. */
export function compileTraceContext(columnIndex: ReadonlyMap<string, number>): TraceContextFn | undefined {
  const w3c = TRACE_HEADERS.flatMap((name) => {
    const i = columnIndex.get(name);
    return i === undefined ? [] : [{ name, i }];
  });
  const debezium = columnIndex.get(DEBEZIUM_SPAN_CONTEXT_COLUMN);
  if (w3c.length === 0 && debezium === undefined) return undefined;
  return (values, headers) => {
    // The dedicated columns win over the Debezium blob, which fills only what they leave empty.
    if (debezium !== undefined) {
      const raw = values.text(debezium);
      if (raw) Object.assign(headers, spanContextHeaders(raw));
    }
    for (const { name, i } of w3c) {
      const value = values.text(i)?.trim();
      if (value) headers[name] = value;
    }
  };
}

/** `traceparent`/`tracestate` from java.util.Properties text (`key=value` or `key: value`, `#`/`!` comments). */
export function spanContextHeaders(properties: string): Partial<Record<(typeof TRACE_HEADERS)[number], string>> {
  const out: Partial<Record<(typeof TRACE_HEADERS)[number], string>> = {};
  for (const line of properties.split(/\r?\n/)) {
    const match = /^\s*([^#!\s=:][^=:\s]*)\s*[=:]\s*(.*?)\s*$/.exec(line);
    const key = match?.[1] as (typeof TRACE_HEADERS)[number] | undefined;
    if (key && (TRACE_HEADERS as readonly string[]).includes(key) && match![2]) out[key] = match![2];
  }
  return out;
}
