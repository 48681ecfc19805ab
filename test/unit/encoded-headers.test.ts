import { describe, expect, it } from 'vitest';
import { encodeHeaders } from '../../src/sink/encoded-headers.js';
import { decodeHeaders } from '../support/encoded-headers.js';

describe('encoded headers (the patched librdkafka addon reads them)', () => {
  it('writes each name and value length-prefixed in order: ASCII, UTF-8, a lone surrogate as U+FFFD (as the array form), Buffers byte for byte, empty values', () => {
    const raw = Buffer.from([0, 255, 10]);
    const decoded = decodeHeaders(encodeHeaders({ id: 'e1', 'outbox-lsn': '0/16B3748', città: 'Zürich 🚀', raw, empty: '', lone: 'a\ud800b' }));
    expect(decoded).toEqual([
      ['id', Buffer.from('e1')],
      ['outbox-lsn', Buffer.from('0/16B3748')],
      ['città', Buffer.from('Zürich 🚀', 'utf8')],
      ['raw', raw],
      ['empty', Buffer.alloc(0)],
      ['lone', Buffer.from([0x61, 0xef, 0xbf, 0xbd, 0x62])],
    ]);
  });

  it('reuses one scratch buffer for usual header sets (valid until the next call) and gives a set larger than it a buffer of its own', () => {
    const first = encodeHeaders({ id: 'e1' });
    const second = encodeHeaders({ id: 'e2', type: 'T' });
    expect(second).toBe(first);
    expect(decodeHeaders(second)).toEqual([['id', Buffer.from('e2')], ['type', Buffer.from('T')]]);
    const big = 'x'.repeat(40_000);
    const large = encodeHeaders({ id: 'e3', big });
    expect(large).not.toBe(first);
    expect(decodeHeaders(large)).toEqual([['id', Buffer.from('e3')], ['big', Buffer.from(big)]]);
    // The scratch buffer is untouched by the large set and serves the next small one.
    expect(encodeHeaders({})).toBe(first);
    expect(decodeHeaders(first)).toEqual([]);
  });
});
