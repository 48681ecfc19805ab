/** The addon's reading of a batch's header sets (scripts/patch-kafka-client.mjs, OutboxDecodeHeaders), in JavaScript: one list per record. */
export function decodeHeaderSets(buf: Buffer): [string, Buffer][][] {
  const sets: [string, Buffer][][] = [];
  let at = 0;
  while (at < buf.length) {
    const end = at + 4 + buf.readUInt32BE(at);
    const set: [string, Buffer][] = [];
    at += 4;
    while (at < end) {
      const nameLength = buf.readUInt32BE(at);
      const name = buf.subarray(at + 4, at + 4 + nameLength).toString('utf8');
      at += 4 + nameLength;
      const valueLength = buf.readUInt32BE(at);
      set.push([name, Buffer.from(buf.subarray(at + 4, at + 4 + valueLength))]);
      at += 4 + valueLength;
    }
    if (at !== end) throw new Error(`a header set ends at ${at}, its length says ${end}`);
    sets.push(set);
  }
  return sets;
}
