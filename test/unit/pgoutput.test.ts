import { describe, expect, it, vi } from 'vitest';
import { decodePgOutput, RecentText, TupleValues } from '../../src/decode/pgoutput.js';
import { beginMessage, commitMessage, insertMessage as insert, logicalMessage, relationMessage } from '../support/pgoutput-messages.js';

function decodedValues(message: Buffer): TupleValues {
  const msg = decodePgOutput(message);
  if (msg.tag !== 'insert') throw new Error(`expected an insert, got ${msg.tag}`);
  return msg.values;
}

describe('pgoutput Insert values', () => {
  it('reads each column as text and as a copy, NULL and unchanged TOAST apart, multi-byte UTF-8 intact, and counts the columns', () => {
    const values = decodedValues(insert(['e-1', null, 'unchanged', 'Grüße ✓', '']));
    // The session refuses a row whose count is not its Relation message's: no index past the end is ever read.
    expect(values.columns).toBe(5);
    expect([0, 1, 2, 3, 4].map((i) => values.text(i))).toEqual(['e-1', null, null, 'Grüße ✓', '']);
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
    const begin = beginMessage(0x1a2b3cn, 4711, 123456789n);
    const commit = commitMessage(0x1a2b3cn, 0x1a2b70n, 123456789n);
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

  it('recent text: the same bytes give the same string again, wherever they are; other bytes, and values too long to remember, are decoded', () => {
    const recent = new RecentText();
    const first = decodedValues(insert(['e-1', 'OrderPlaced'])).recentText(1, recent);
    // Equal strings are equal in JavaScript whether or not they are one object: what shows is that no decode ran.
    const decodes = vi.spyOn(Buffer.prototype, 'toString');
    const again = decodedValues(insert(['another id', 'OrderPlaced'])).recentText(1, recent);
    expect(decodes).not.toHaveBeenCalled();
    expect(first).toBe('OrderPlaced');
    expect(again).toBe('OrderPlaced');
    // Same length, one byte apart (the last): decoded, not the remembered one; then back.
    expect(decodedValues(insert(['e-1', 'OrderPlacer'])).recentText(1, recent)).toBe('OrderPlacer');
    expect(decodes).toHaveBeenCalledTimes(1);
    decodes.mockRestore();
    expect(decodedValues(insert(['e-1', 'OrderPlaced'])).recentText(1, recent)).toBe('OrderPlaced');
    expect(decodedValues(insert(['e-1', 'Grüße'])).recentText(1, recent)).toBe('Grüße');
    expect(decodedValues(insert(['e-1', ''])).recentText(1, recent)).toBe('');
    const long = 'x'.repeat(100);
    expect(decodedValues(insert(['e-1', long])).recentText(1, recent)).toBe(long);
    expect(decodedValues(insert(['e-1', `${'x'.repeat(99)}y`])).recentText(1, recent)).toBe(`${'x'.repeat(99)}y`);
    expect([null, 'unchanged'].map((v) => decodedValues(insert(['e-1', v])).recentText(1, recent))).toEqual([null, null]);
  });
});

describe('pgoutput Relation and Message', () => {
  it('decodes a Relation: its id, schema, table, and each column with its type and whether it is in the key', () => {
    expect(decodePgOutput(relationMessage('outbox', ['id', 'payload'], 'app'))).toEqual({
      tag: 'relation',
      relationId: 0x4001,
      schema: 'app',
      table: 'outbox',
      columns: [
        { name: 'id', typeOid: 25, isKey: true },
        { name: 'payload', typeOid: 3802, isKey: false },
      ],
    });
  });

  it('decodes a logical message, transactional or not, its content as sent (multi-byte UTF-8, empty)', () => {
    const message = decodePgOutput(logicalMessage('outbox', '{"id":"e-1"}\nGrüße', true, 0x1a2b3cn));
    expect(message).toMatchObject({ tag: 'message', transactional: true, lsn: 0x1a2b3cn, prefix: 'outbox' });
    if (message.tag !== 'message') throw new Error('not a message');
    expect(message.content.toString()).toBe('{"id":"e-1"}\nGrüße');
    expect(decodePgOutput(logicalMessage('heartbeat', '', false, 0x10n))).toEqual({ tag: 'message', transactional: false, lsn: 0x10n, prefix: 'heartbeat', content: Buffer.alloc(0) });
  });

  it('refuses a logical message whose content length runs past the end of the message, instead of relaying the content cut short', () => {
    const message = logicalMessage('outbox', '{"id":"e-1"}\n{"a":1}');
    // Before: decoded with the content's last 3 bytes missing.
    expect(() => decodePgOutput(message.subarray(0, -3))).toThrow(expect.objectContaining({ code: 'PG_PROTOCOL', details: expect.objectContaining({ prefix: 'outbox', contentBytes: 20 }) }));
  });
});

describe('pgoutput messages cut short', () => {
  // Before, Buffer's reads threw RangeError, which the session reported as INTERNAL "decoding failed: The value of "offset" is out of range".
  it.each([
    ['Begin', beginMessage(0x200n, 7).subarray(0, 12)],
    ['Commit', commitMessage(0x200n, 0x210n).subarray(0, 20)],
    ['Relation', relationMessage('outbox', ['id', 'payload']).subarray(0, -6)],
    ['Message', logicalMessage('outbox', '{}').subarray(0, -4)],
    ['Insert', insert(['e-1']).subarray(0, 7)],
  ])('%s message ending before its fields: PG_PROTOCOL naming it, not a RangeError', (name, message) => {
    expect(() => decodePgOutput(message)).toThrow(
      expect.objectContaining({ code: 'PG_PROTOCOL', message: `pgoutput: ${name} message ('${name[0]}') ends before its fields: ${message.length} bytes` }),
    );
  });
});
