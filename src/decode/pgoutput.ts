import { isUtf8 } from 'node:buffer';
import { RelayError } from '../errors.js';
import type { Lsn } from '../lsn.js';

/**
 * A decoder for the pgoutput logical replication protocol (version 1), written for this relay instead of the
 * `pg-logical-replication` parser: column values stay raw bytes (positions in the received chunk), so a JSON
 * payload is never parsed, and only the messages an outbox needs are decoded. Update, Delete, Truncate,
 * Type and Origin are recognised and skipped.
 * https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html
 */
export interface BeginMessage {
  tag: 'begin';
  /** LSN of the commit record (its start): the position a replay starts from. */
  finalLsn: Lsn;
  /** Commit time, microseconds since 2000-01-01 UTC. */
  commitTime: bigint;
  xid: number;
}

export interface CommitMessage {
  tag: 'commit';
  commitLsn: Lsn;
  /** End of the commit record: the position to confirm once the transaction is delivered. */
  endLsn: Lsn;
  commitTime: bigint;
}

export interface RelationColumn {
  name: string;
  typeOid: number;
  isKey: boolean;
}

export interface RelationMessage {
  tag: 'relation';
  relationId: number;
  schema: string;
  table: string;
  columns: RelationColumn[];
}

const NULL_VALUE = -1;
const UNCHANGED_VALUE = -2;

/**
 * A row's column values as positions in the received message: a column's bytes are read (as text, or copied)
 * only when the mapping uses them, and a row costs one array instead of a `Buffer` view per column, whose
 * allocation was a large part of a drain's garbage collection (docs/benchmarks.md). Valid only while the
 * message is handled: the client reuses its receive buffer.
 */
export class TupleValues {
  /** [start, end) per column; start is NULL_VALUE or UNCHANGED_VALUE for those. */
  constructor(
    private readonly buf: Buffer,
    private readonly bounds: number[],
    /**
     * The first column sent as an unchanged TOASTed value ('u'), else -1. An INSERT never has one (logical decoding
     * puts the whole value in it): if one came, the value is missing, not NULL, and the row must not be read as if it were.
     */
    readonly unchanged = -1,
  ) {}

  /** Values that did not come from the WAL (republish reads rows with SQL): `null` for SQL NULL. */
  static fromText(values: readonly (string | null)[]): TupleValues {
    const bounds: number[] = [];
    let length = 0;
    for (const v of values) {
      if (v === null) bounds.push(NULL_VALUE, NULL_VALUE);
      else {
        const bytes = Buffer.byteLength(v);
        bounds.push(length, length + bytes);
        length += bytes;
      }
    }
    return new TupleValues(Buffer.from(values.filter((v) => v !== null).join('')), bounds);
  }

  /**
   * How many columns the row has. The session holds an Insert to its Relation message's count, so that a column
   * index the mappers compiled from that message is one of the row's: none past the end reads as NULL.
   */
  get columns(): number {
    return this.bounds.length >> 1;
  }

  /** The value as text; `null` for SQL NULL or an unchanged TOASTed value. */
  text(i: number): string | null {
    const start = this.bounds[2 * i]!;
    // No encoding argument: Buffer#toString then goes straight to the UTF-8 slice, without looking the name up.
    return start < 0 ? null : this.buf.toString(undefined, start, this.bounds[2 * i + 1]);
  }

  /**
   * `text(i)`, but `recent`'s string again when the value has the bytes it decoded last: for columns whose values
   * repeat from row to row (event type, aggregate type, the topic's columns) a compare of a few bytes replaces a
   * new string per row, which an event in flight would otherwise keep alive through garbage collections.
   */
  recentText(i: number, recent: RecentText): string | null {
    const start = this.bounds[2 * i]!;
    return start < 0 ? null : recent.read(this.buf, start, this.bounds[2 * i + 1]!);
  }

  /**
   * Whether `text`, the value `text(i)` decoded, is ASCII, known without a scan: decoded from UTF-8, any other
   * character takes more bytes than UTF-16 units. PostgreSQL sends UTF-8 (client_encoding=UTF8); only from a
   * SQL_ASCII database are the bytes sent as stored (pre-flight), and a lone byte that is not UTF-8 decodes to one
   * U+FFFD (then counted 1 byte of its 3): the row mapper refuses those in the columns it reads there (`isUtf8`).
   */
  isAscii(i: number, text: string): boolean {
    const start = this.bounds[2 * i]!;
    return this.bounds[2 * i + 1]! - start === text.length;
  }

  /**
   * Whether the value's bytes are UTF-8 (NULL and unchanged values are). Only a SQL_ASCII database, asked to send
   * text as stored, sends bytes that may not be, and `text` decodes each such byte to U+FFFD: `Müller` and `Mäller`
   * written in LATIN1 the same text.
   */
  isUtf8(i: number): boolean {
    const start = this.bounds[2 * i]!;
    return start < 0 || isUtf8(this.buf.subarray(start, this.bounds[2 * i + 1]));
  }

  /**
   * A bytea value's bytes, decoded from its text format (`\x`, then two hex digits a byte) straight from the message:
   * the hex text was copied into a Buffer of its own per event first. Through a latin1 string, as Node decodes hex only
   * from a string: a decoding loop in JavaScript took more instructions, at 200 bytes already (callgrind).
   * `null` for SQL NULL; `undefined` when unchanged (TOAST) or not in hex format (bytea_output = 'escape').
   */
  bytea(i: number): Buffer | null | undefined {
    const start = this.bounds[2 * i]!;
    if (start === NULL_VALUE) return null;
    const end = this.bounds[2 * i + 1]!;
    // Past `end` is the next value (republish's rows share one buffer): a value `\` before one starting with `x` is not hex.
    if (start === UNCHANGED_VALUE || end - start < 2 || this.buf[start] !== 0x5c || this.buf[start + 1] !== 0x78) return undefined;
    return Buffer.from(this.buf.toString('latin1', start + 2, end), 'hex');
  }

  /** A copy of the value's bytes, which outlives the message; `null` for SQL NULL, `undefined` when unchanged (TOAST). */
  copy(i: number): Buffer | null | undefined {
    const start = this.bounds[2 * i]!;
    if (start === NULL_VALUE) return null;
    if (start === UNCHANGED_VALUE) return undefined;
    const end = this.bounds[2 * i + 1]!;
    const out = Buffer.allocUnsafe(end - start);
    this.buf.copy(out, 0, start, end);
    return out;
  }
}

/** Values longer than this are decoded every time: the ones worth remembering are short names. */
const RECENT_TEXT_BYTES = 64;

/** One column's last decoded value and its bytes (TupleValues.recentText). */
export class RecentText {
  private readonly bytes = Buffer.allocUnsafe(RECENT_TEXT_BYTES);
  private length = -1;
  private text = '';

  read(buf: Buffer, start: number, end: number): string {
    const length = end - start;
    if (length === this.length) {
      let i = 0;
      while (i < length && buf[start + i] === this.bytes[i]) i++;
      if (i === length) return this.text;
    }
    const text = buf.toString(undefined, start, end);
    if (length <= RECENT_TEXT_BYTES) {
      // A loop, not Buffer#copy: for a few bytes the native call costs more than the copy.
      for (let i = 0; i < length; i++) this.bytes[i] = buf[start + i]!;
      this.length = length;
      this.text = text;
    }
    return text;
  }
}

export interface InsertMessage {
  tag: 'insert';
  relationId: number;
  values: TupleValues;
}

export interface LogicalMessage {
  tag: 'message';
  transactional: boolean;
  lsn: Lsn;
  prefix: string;
  content: Buffer;
}

export interface SkippedMessage {
  tag: 'skipped';
  kind: 'update' | 'delete' | 'truncate' | 'type' | 'origin';
}

export type PgOutputMessage = BeginMessage | CommitMessage | RelationMessage | InsertMessage | LogicalMessage | SkippedMessage;

const SKIPPED: Record<number, SkippedMessage['kind']> = {
  0x55: 'update', // U
  0x44: 'delete', // D
  0x54: 'truncate', // T
  0x59: 'type', // Y
  0x4f: 'origin', // O
};

/** The messages the decoder reads, by tag: named when one ends before its fields. */
const DECODED: Record<number, string> = {
  0x42: 'Begin', // B
  0x43: 'Commit', // C
  0x52: 'Relation', // R
  0x49: 'Insert', // I
  0x4d: 'Message', // M
};

/**
 * The message starts at `at` in `buf` (the replication client passes the CopyData chunk and the header's length,
 * saving a Buffer per message); `buf` ends where the message does.
 */
export function decodePgOutput(buf: Buffer, at = 0): PgOutputMessage {
  try {
    return decodeMessage(buf, at);
  } catch (err) {
    // Buffer's reads throw RangeError past the end: one catch here stands for a length check per field.
    if (!(err instanceof RangeError)) throw err;
    const tag = buf[at]!;
    throw protocolError(`${DECODED[tag]} message ('${String.fromCharCode(tag)}') ends before its fields: ${buf.length - at} bytes`, { messageBytes: buf.length - at });
  }
}

function decodeMessage(buf: Buffer, at: number): PgOutputMessage {
  const tag = buf[at];
  switch (tag) {
    case 0x42: // B
      return { tag: 'begin', finalLsn: buf.readBigUInt64BE(at + 1), commitTime: buf.readBigInt64BE(at + 9), xid: buf.readUInt32BE(at + 17) };
    case 0x43: // C (flags byte at 1 is unused)
      return { tag: 'commit', commitLsn: buf.readBigUInt64BE(at + 2), endLsn: buf.readBigUInt64BE(at + 10), commitTime: buf.readBigInt64BE(at + 18) };
    case 0x52: // R
      return decodeRelation(buf, at);
    case 0x49: {
      // I: relation id, then 'N' and the new tuple
      if (buf[at + 5] !== 0x4e) throw protocolError(`Insert without a new tuple (byte ${buf[at + 5]})`);
      return { tag: 'insert', relationId: buf.readUInt32BE(at + 1), values: decodeTuple(buf, at + 6) };
    }
    case 0x4d: {
      // M: flags (bit 0: transactional), LSN, prefix, length, content
      const transactional = (buf[at + 1]! & 1) === 1;
      const lsn = buf.readBigUInt64BE(at + 2);
      const [prefix, next] = readCString(buf, at + 10);
      const end = next + 4 + buf.readUInt32BE(next);
      // subarray would stop at the buffer's end: the event would be relayed with its content cut short.
      if (end > buf.length) throw protocolError(`the content of a Message (prefix "${prefix}") runs past the end of the message`, { prefix, contentBytes: end - next - 4, messageBytes: buf.length - at });
      return { tag: 'message', transactional, lsn, prefix, content: buf.subarray(next + 4, end) };
    }
    default: {
      const kind = tag === undefined ? undefined : SKIPPED[tag];
      if (kind) return { tag: 'skipped', kind };
      throw protocolError(`unknown pgoutput message type 0x${tag?.toString(16) ?? '??'}`);
    }
  }
}

function decodeRelation(buf: Buffer, at: number): RelationMessage {
  const relationId = buf.readUInt32BE(at + 1);
  let [schema, offset] = readCString(buf, at + 5);
  let table: string;
  [table, offset] = readCString(buf, offset);
  offset += 1; // replica identity setting
  const count = buf.readUInt16BE(offset);
  offset += 2;
  const columns: RelationColumn[] = [];
  for (let i = 0; i < count; i++) {
    const flags = buf[offset]!;
    let name: string;
    [name, offset] = readCString(buf, offset + 1);
    const typeOid = buf.readUInt32BE(offset);
    offset += 8; // type oid, type modifier
    columns.push({ name, typeOid, isKey: (flags & 1) === 1 });
  }
  return { tag: 'relation', relationId, schema, table, columns };
}

/** TupleData: Int16 column count, then per column 'n' (null), 'u' (unchanged TOAST), 't'/'b' + Int32 length + bytes. */
function decodeTuple(buf: Buffer, start: number): TupleValues {
  const count = buf.readUInt16BE(start);
  let offset = start + 2;
  const bounds: number[] = new Array(2 * count);
  let unchanged = -1;
  for (let i = 0; i < count; i++) {
    const kind = buf[offset++];
    if (kind === 0x6e) bounds[2 * i] = NULL_VALUE;
    else if (kind === 0x75) {
      bounds[2 * i] = UNCHANGED_VALUE;
      if (unchanged < 0) unchanged = i;
    }
    else if (kind === 0x74 || kind === 0x62) {
      const length = buf.readUInt32BE(offset);
      bounds[2 * i] = offset + 4;
      bounds[2 * i + 1] = offset + 4 + length;
      offset += 4 + length;
      if (offset > buf.length) throw protocolError('a column value runs past the end of the message');
    } else throw protocolError(`unknown tuple column kind 0x${kind?.toString(16) ?? '??'}`);
  }
  return new TupleValues(buf, bounds, unchanged);
}

function readCString(buf: Buffer, offset: number): [string, number] {
  const end = buf.indexOf(0, offset);
  if (end < 0) throw protocolError('unterminated string');
  return [buf.toString('utf8', offset, end), end + 1];
}

/** A message pgoutput (protocol version 1) does not send: the relay cannot tell what the WAL held there. */
export function protocolError(message: string, details?: Record<string, unknown>): RelayError {
  return new RelayError('PG_PROTOCOL', `pgoutput: ${message}`, {
    hint: 'this is a bug or an unsupported server version; please report it with the server version. The relay stopped before this message and did not confirm past it',
    details,
  });
}

/** PostgreSQL timestamps count microseconds from 2000-01-01; JavaScript counts milliseconds from 1970-01-01. */
const PG_EPOCH_MS = 946_684_800_000;

export function pgTimeToMs(micros: bigint): number {
  return Number(micros / 1000n) + PG_EPOCH_MS;
}

export function msToPgTime(ms: number): bigint {
  return BigInt(ms - PG_EPOCH_MS) * 1000n;
}
