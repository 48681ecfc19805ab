import { describe, expect, it } from 'vitest';
import { decodePgOutput, TupleValues } from '../../src/decode/pgoutput.js';

/** An Insert message as pgoutput sends it: 'I', relation id, 'N', column count, then each column. */
function insert(columns: (string | null | 'unchanged')[]): Buffer {
  const parts = [Buffer.from([0x49, 0, 0, 0x40, 0x01, 0x4e]), Buffer.from([0, columns.length])];
  for (const c of columns) {
    if (c === null) parts.push(Buffer.from('n'));
    else if (c === 'unchanged') parts.push(Buffer.from('u'));
    else {
      const bytes = Buffer.from(c);
      const head = Buffer.alloc(5);
      head[0] = 0x74; // 't'
      head.writeUInt32BE(bytes.length, 1);
      parts.push(head, bytes);
    }
  }
  return Buffer.concat(parts);
}

function decodedValues(message: Buffer): TupleValues {
  const msg = decodePgOutput(message);
  if (msg.tag !== 'insert') throw new Error(`expected an insert, got ${msg.tag}`);
  return msg.values;
}

describe('pgoutput Insert values', () => {
  it('reads each column as text and as a copy, NULL and unchanged TOAST apart, multi-byte UTF-8 intact, a column past the row’s end as NULL', () => {
    const values = decodedValues(insert(['e-1', null, 'unchanged', 'Grüße ✓', '']));
    expect([0, 1, 2, 3, 4, 5].map((i) => values.text(i))).toEqual(['e-1', null, null, 'Grüße ✓', '', null]);
    expect(values.copy(1)).toBeNull();
    expect(values.copy(2)).toBeUndefined();
    expect(values.copy(3)!.toString()).toBe('Grüße ✓');
    expect(values.copy(4)!.length).toBe(0);
  });

  it('copies a value out of the message: changing the received bytes afterwards does not change the copy', () => {
    const message = insert(['e-1', '{"a":1}']);
    const copy = decodedValues(message).copy(1)!;
    message.fill(0);
    expect(copy.toString()).toBe('{"a":1}');
  });

  it('refuses a column whose length runs past the end of the message', () => {
    const message = insert(['e-1', 'payload']);
    expect(() => decodePgOutput(message.subarray(0, message.length - 3))).toThrow(expect.objectContaining({ code: 'PG_PROTOCOL' }));
  });

  it('decodes a message that starts inside the chunk (after the XLogData header), Begin, Insert and Commit alike', () => {
    const header = Buffer.alloc(25, 0x77);
    const begin = Buffer.alloc(21);
    begin[0] = 0x42; // 'B': final LSN, commit time, xid
    begin.writeBigUInt64BE(0x1a2b3cn, 1);
    begin.writeBigInt64BE(123456789n, 9);
    begin.writeUInt32BE(4711, 17);
    const commit = Buffer.alloc(26);
    commit[0] = 0x43; // 'C': flags, commit LSN, end LSN, commit time
    commit.writeBigUInt64BE(0x1a2b3cn, 2);
    commit.writeBigUInt64BE(0x1a2b70n, 10);
    commit.writeBigInt64BE(123456789n, 18);
    expect(decodePgOutput(Buffer.concat([header, begin]), 25)).toEqual({ tag: 'begin', finalLsn: 0x1a2b3cn, commitTime: 123456789n, xid: 4711 });
    expect(decodePgOutput(Buffer.concat([header, commit]), 25)).toEqual({ tag: 'commit', commitLsn: 0x1a2b3cn, endLsn: 0x1a2b70n, commitTime: 123456789n });
    const msg = decodePgOutput(Buffer.concat([header, insert(['e-1', null, '{"a":1}'])]), 25);
    expect(msg).toMatchObject({ tag: 'insert', relationId: 0x4001 });
    if (msg.tag !== 'insert') throw new Error('not an insert');
    expect([0, 1, 2].map((i) => msg.values.text(i))).toEqual(['e-1', null, '{"a":1}']);
  });

  it('builds the same values from SQL text (republish)', () => {
    const values = TupleValues.fromText(['e-1', null, 'Grüße', '']);
    expect([0, 1, 2, 3].map((i) => values.text(i))).toEqual(['e-1', null, 'Grüße', '']);
    expect(values.copy(1)).toBeNull();
    expect(values.copy(2)!.toString()).toBe('Grüße');
  });
});
