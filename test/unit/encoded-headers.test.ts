import { describe, expect, it } from 'vitest';
import { HeaderSets } from '../../src/sink/encoded-headers.js';
import { decodeHeaderSets } from '../support/encoded-headers.js';

describe('encoded header sets (the patched librdkafka addon reads them)', () => {
  it('writes each record its set, each name and value length-prefixed in order: ASCII, UTF-8, a lone surrogate as U+FFFD (as the array form), Buffers byte for byte, empty values and sets', () => {
    const raw = Buffer.from([0, 255, 10]);
    const sets = new HeaderSets();
    sets.add({ id: 'e1', 'outbox-lsn': '0/16B3748', città: 'Zürich 🚀', raw, empty: '', lone: 'a\ud800b' });
    sets.add({});
    sets.add({ id: 'e2' });
    expect(decodeHeaderSets(sets.bytes())).toEqual([
      [
        ['id', Buffer.from('e1')],
        ['outbox-lsn', Buffer.from('0/16B3748')],
        ['città', Buffer.from('Zürich 🚀', 'utf8')],
        ['raw', raw],
        ['empty', Buffer.alloc(0)],
        ['lone', Buffer.from([0x61, 0xef, 0xbf, 0xbd, 0x62])],
      ],
      [],
      [['id', Buffer.from('e2')]],
    ]);
  });

  it('grows past its buffer keeping the sets before (a batch of 5,000 records, a set of 1 MB), and starts afresh on reset', () => {
    const sets = new HeaderSets();
    for (let i = 0; i < 5000; i++) sets.add({ id: `e${i}`, 'outbox-event-type': 'OrderPlaced', 'outbox-commit-lsn': '0/16B3748' });
    const big = 'x'.repeat(1_000_000);
    sets.add({ id: 'big', big });
    const decoded = decodeHeaderSets(sets.bytes());
    expect(decoded).toHaveLength(5001);
    expect(decoded[4999]).toEqual([['id', Buffer.from('e4999')], ['outbox-event-type', Buffer.from('OrderPlaced')], ['outbox-commit-lsn', Buffer.from('0/16B3748')]]);
    expect(decoded[5000]!.map(([name]) => name)).toEqual(['id', 'big']);
    expect(decoded[5000]![1]![1].equals(Buffer.from(big))).toBe(true);
    sets.reset();
    sets.add({ id: 'e' });
    expect(decodeHeaderSets(sets.bytes())).toEqual([[['id', Buffer.from('e')]]]);
  });
});
