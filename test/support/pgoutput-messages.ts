/** An Insert message as pgoutput sends it: 'I', relation id 0x4001, 'N', column count, then each column. */
export function insertMessage(columns: (string | null | 'unchanged')[]): Buffer {
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
