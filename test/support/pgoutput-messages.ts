/** An Insert message as pgoutput sends it: 'I', relation id 0x4001, 'N', column count, then each column. */
export function insertMessage(columns: (string | Buffer | null | 'unchanged')[]): Buffer {
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

/** A fixed-size message: its tag, then big-endian fields (8 or 4 bytes) at their offsets. */
function fixedMessage(tag: string, length: number, fields: [offset: number, value: bigint, bytes: 8 | 4][]): Buffer {
  const message = Buffer.alloc(length);
  message.write(tag);
  for (const [offset, value, bytes] of fields) {
    if (bytes === 8) message.writeBigUInt64BE(value, offset);
    else message.writeUInt32BE(Number(value), offset);
  }
  return message;
}

/** 'B': final (commit) LSN, commit time, xid. */
export function beginMessage(finalLsn: bigint, xid: number, commitTime = 0n): Buffer {
  return fixedMessage('B', 21, [
    [1, finalLsn, 8],
    [9, commitTime, 8],
    [17, BigInt(xid), 4],
  ]);
}

/** 'C': flags (0), commit LSN, end LSN, commit time. */
export function commitMessage(commitLsn: bigint, endLsn: bigint, commitTime = 0n): Buffer {
  return fixedMessage('C', 26, [
    [2, commitLsn, 8],
    [10, endLsn, 8],
    [18, commitTime, 8],
  ]);
}

/** 'R' for relation 0x4001 (as insertMessage uses), replica identity default; `payload` is jsonb, every other column text. */
export function relationMessage(table: string, columns: string[], schema = 'public'): Buffer {
  const head = Buffer.from([0x52, 0, 0, 0x40, 0x01]);
  const parts = [head, Buffer.from(`${schema}\0${table}\0`), Buffer.from([0x64, 0, columns.length])];
  for (const name of columns) {
    const type = Buffer.alloc(8); // type OID, typmod 0
    type.writeUInt32BE(name === 'payload' ? 3802 : 25, 0);
    parts.push(Buffer.from([name === 'id' ? 1 : 0]), Buffer.from(`${name}\0`), type);
  }
  return Buffer.concat(parts);
}

/** 'M' (pg_logical_emit_message): flags (bit 0: transactional), its LSN, the prefix, then the content with its length. */
export function logicalMessage(prefix: string, content: string, transactional = true, lsn = 0n): Buffer {
  const head = Buffer.alloc(10);
  head.write('M');
  head[1] = transactional ? 1 : 0;
  head.writeBigUInt64BE(lsn, 2);
  const bytes = Buffer.from(content);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([head, Buffer.from(`${prefix}\0`), length, bytes]);
}
