import { describe, expect, it } from 'vitest';
import { formatLsn, isLsn, parseLsn } from '../../src/lsn.js';

describe('LSN', () => {
  it('parses padded and unpadded forms to the same 64-bit value', () => {
    expect(parseLsn('0/800A800')).toBe(0x800a800n);
    expect(parseLsn('00000000/0800A800')).toBe(0x800a800n);
    expect(parseLsn('1/0')).toBe(1n << 32n);
    expect(parseLsn('FFFFFFFF/FFFFFFFF')).toBe((1n << 64n) - 1n);
  });

  it('orders numerically where string comparison would not', () => {
    expect(parseLsn('0/10000000') > parseLsn('0/FFFFFFF')).toBe(true);
    expect('0/10000000' > '0/FFFFFFF').toBe(false);
  });

  it('formats as PostgreSQL does and round-trips', () => {
    expect(formatLsn(0x16b3748n)).toBe('0/16B3748');
    expect(formatLsn(parseLsn('2/ABCDEF01'))).toBe('2/ABCDEF01');
  });

  it('rejects what is not an LSN', () => {
    expect(isLsn('0/0')).toBe(true);
    for (const bad of ['', '0', '0/', '/1', 'x/1', '123456789/0', '0/1; DROP TABLE t']) {
      expect(isLsn(bad)).toBe(false);
      expect(() => parseLsn(bad)).toThrow(RangeError);
    }
  });
});
