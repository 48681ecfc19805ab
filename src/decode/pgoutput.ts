import { RelayError } from '../errors.js';
import type { Lsn } from '../lsn.js';

/**
 * A decoder for the pgoutput logical replication protocol (version 1), written for this relay instead of the
 * `pg-logical-replication` parser: column values stay raw bytes (views into the received chunk), so a JSON
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

/** A column value: text-format bytes, `null` for SQL NULL, `undefined` for an unchanged TOASTed value. */
export type ColumnValue = Buffer | null | undefined;

export interface InsertMessage {
  tag: 'insert';
  relationId: number;
  values: ColumnValue[];
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

export function decodePgOutput(buf: Buffer): PgOutputMessage {
  const tag = buf[0];
  switch (tag) {
    case 0x42: // B
      return { tag: 'begin', finalLsn: buf.readBigUInt64BE(1), commitTime: buf.readBigInt64BE(9), xid: buf.readUInt32BE(17) };
    case 0x43: // C (flags byte at 1 is unused)
      return { tag: 'commit', commitLsn: buf.readBigUInt64BE(2), endLsn: buf.readBigUInt64BE(10), commitTime: buf.readBigInt64BE(18) };
    case 0x52: // R
      return decodeRelation(buf);
    case 0x49: {
      // I: relation id, then 'N' and the new tuple
      if (buf[5] !== 0x4e) throw protocolError(`Insert without a new tuple (byte ${buf[5]})`);
      return { tag: 'insert', relationId: buf.readUInt32BE(1), values: decodeTuple(buf, 6) };
    }
    case 0x4d: {
      // M: flags (bit 0: transactional), LSN, prefix, length, content
      const transactional = (buf[1]! & 1) === 1;
      const lsn = buf.readBigUInt64BE(2);
      const [prefix, next] = readCString(buf, 10);
      const length = buf.readUInt32BE(next);
      return { tag: 'message', transactional, lsn, prefix, content: buf.subarray(next + 4, next + 4 + length) };
    }
    default: {
      const kind = tag === undefined ? undefined : SKIPPED[tag];
      if (kind) return { tag: 'skipped', kind };
      throw protocolError(`unknown pgoutput message type 0x${tag?.toString(16) ?? '??'}`);
    }
  }
}

function decodeRelation(buf: Buffer): RelationMessage {
  const relationId = buf.readUInt32BE(1);
  let [schema, offset] = readCString(buf, 5);
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
function decodeTuple(buf: Buffer, start: number): ColumnValue[] {
  const count = buf.readUInt16BE(start);
  let offset = start + 2;
  const values: ColumnValue[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const kind = buf[offset++];
    if (kind === 0x6e) values[i] = null;
    else if (kind === 0x75) values[i] = undefined;
    else if (kind === 0x74 || kind === 0x62) {
      const length = buf.readUInt32BE(offset);
      values[i] = buf.subarray(offset + 4, offset + 4 + length);
      offset += 4 + length;
    } else throw protocolError(`unknown tuple column kind 0x${kind?.toString(16) ?? '??'}`);
  }
  return values;
}

function readCString(buf: Buffer, offset: number): [string, number] {
  const end = buf.indexOf(0, offset);
  if (end < 0) throw protocolError('unterminated string');
  return [buf.toString('utf8', offset, end), end + 1];
}

function protocolError(message: string): RelayError {
  return new RelayError('PG_PROTOCOL', `pgoutput: ${message}`, { hint: 'this is a bug or an unsupported server version; please report it with the server version' });
}

/** PostgreSQL timestamps count microseconds from 2000-01-01; JavaScript counts milliseconds from 1970-01-01. */
const PG_EPOCH_MS = 946_684_800_000;

export function pgTimeToMs(micros: bigint): number {
  return Number(micros / 1000n) + PG_EPOCH_MS;
}

export function msToPgTime(ms: number): bigint {
  return BigInt(ms - PG_EPOCH_MS) * 1000n;
}
