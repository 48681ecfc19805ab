/**
 * Log sequence numbers as 64-bit integers. PostgreSQL prints them as `XXXXXXXX/XXXXXXXX` with or without
 * zero padding (`0/16B3748`, `00000000/016B3748`): comparing those as strings is wrong, so everything
 * inside the relay is a bigint and strings exist only at the edges.
 */
export type Lsn = bigint;

const LSN_PATTERN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function parseLsn(text: string): Lsn {
  const match = LSN_PATTERN.exec(text.trim());
  if (!match) throw new RangeError(`"${text}" is not an LSN: expected two hex numbers like 0/16B3748`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

export function isLsn(text: string): boolean {
  return LSN_PATTERN.test(text.trim());
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function maxLsn(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b;
}
