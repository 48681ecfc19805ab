import { describe, expect, it } from 'vitest';
import { TupleValues } from '../../src/decode/pgoutput.js';
import { compileTraceContext, spanContextHeaders } from '../../src/route/trace-context.js';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const row = (...values: (string | null)[]) => TupleValues.fromText(values);

describe('trace context columns', () => {
  it('reads traceparent and tracestate from Debezium’s tracingspancontext (java.util.Properties text)', () => {
    const properties = `#Mon Nov 30 05:40:00 UTC 2026\ntraceparent=${TRACEPARENT}\ntracestate = congo=t61rcWkgMzE,rojo=00f067aa0ba902b7\n! other\nbaggage=x\n`;
    expect(spanContextHeaders(properties)).toEqual({ traceparent: TRACEPARENT, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' });
    expect(spanContextHeaders(`traceparent: ${TRACEPARENT}\r\n`)).toEqual({ traceparent: TRACEPARENT });
    expect(spanContextHeaders('# nothing here\n')).toEqual({});
  });

  it('undoes the escapes Properties.store writes (\\= \\: \\# \\! \\uXXXX) and joins continued lines', () => {
    // What Debezium's DataMapTracingSetter stores for a tracestate with '=' in its members.
    const stored = `#Thu Dec 03 10:00:00 UTC 2026\ntraceparent=${TRACEPARENT}\ntracestate=congo\\=t61rcWkgMzE,rojo\\=00f067aa0ba902b7\n`;
    expect(spanContextHeaders(stored)).toEqual({ traceparent: TRACEPARENT, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' });
    expect(spanContextHeaders('tracestate=a\\u003db\\:c\\\\d')).toEqual({ tracestate: 'a=b:c\\d' });
    expect(spanContextHeaders('tracestate=congo\\=1,\\\n    rojo\\=2')).toEqual({ tracestate: 'congo=1,rojo=2' });
  });

  // Inputs a quadratic parse takes minutes on: the test's timeout is what bounds them, no time is asserted.
  it('reads a value with a long run of blanks inside it whole, its trailing blanks trimmed', () => {
    const blanks = ' '.repeat(500_000);
    expect(spanContextHeaders(`tracestate=a${blanks}b${blanks}\n`)).toEqual({ tracestate: `a${blanks}b` });
  });

  it('joins a value continued over many lines', () => {
    const lines = 600_000;
    expect(spanContextHeaders(`tracestate=${'a\\\n  '.repeat(lines)}b`)).toEqual({ tracestate: `${'a'.repeat(lines)}b` });
  });

  it('costs nothing for a table without the columns', () => {
    expect(compileTraceContext(new Map([['id', 0], ['payload', 1]]))).toBeUndefined();
  });

  it('sets the headers from the W3C columns, skipping NULL and empty values; they win over tracingspancontext', () => {
    const fn = compileTraceContext(new Map([['id', 0], ['traceparent', 1], ['tracestate', 2], ['tracingspancontext', 3]]))!;
    const headers: Record<string, string | Buffer> = {};
    fn(row('e1', TRACEPARENT, null, 'traceparent=00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-00\ntracestate=from=debezium'), headers);
    expect(headers).toEqual({ traceparent: TRACEPARENT, tracestate: 'from=debezium' });
    const empty: Record<string, string | Buffer> = {};
    fn(row('e2', '', null, null), empty);
    expect(empty).toEqual({});
  });
});
