import { describe, expect, it } from 'vitest';
import type { SourceTransaction } from '../../src/checkpoint/ack-tracker.js';
import type { LogicalMessage } from '../../src/decode/pgoutput.js';
import { headerValues } from '../../src/route/header-values.js';
import { MessageMapper } from '../../src/route/message-mapper.js';

describe('header values: the stored JSON text of each member', () => {
  it('keeps numbers as written, unquotes strings, keeps nested values as stored, drops nulls', () => {
    const text = '{"num": 12345678901234567890, "dec": 1.50, "s": "a\\"b,}c", "o": {"x": [1, "]"]}, "n": null, "b": true, "u": "\\u00e9", "dup": 1, "dup": 2.0}';
    expect(headerValues(text)).toEqual({ num: '12345678901234567890', dec: '1.50', s: 'a"b,}c', o: '{"x": [1, "]"]}', b: 'true', u: 'é', dup: '2.0' });
    expect(headerValues(' { } ')).toEqual({});
    expect(headerValues('null')).toEqual({});
  });

  it('a "__proto__" key is a header like any other (not a prototype assignment that drops it)', () => {
    expect(Object.entries(headerValues('{"__proto__": "x", "a": "1"}'))).toEqual([
      ['__proto__', 'x'],
      ['a', '1'],
    ]);
  });

  it('refuses text that is not a JSON object', () => {
    expect(() => headerValues('{not json')).toThrow(SyntaxError);
    expect(() => headerValues('[1]')).toThrow(/expected a JSON object, found an array/);
  });

  it('logical messages: the metadata headers keep their stored text too', () => {
    const mapper = new MessageMapper({ prefixes: ['p'], topic: 't', envelope: { mode: 'none' } });
    const content = Buffer.from('{"id": "e1", "type": "T", "headers": {"num": 12345678901234567890, "dec": 1.50}}\n{}');
    const message = { tag: 'message', prefix: 'p', content, transactional: true, lsn: 1n } as unknown as LogicalMessage;
    const event = mapper.map(message, { commitLsn: 5n, commitTimeMs: 0, xid: 1 } as unknown as SourceTransaction);
    expect([event.headers.num, event.headers.dec]).toEqual(['12345678901234567890', '1.50']);
  });
});
