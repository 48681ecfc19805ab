/** The addon's reading of the format (scripts/patch-kafka-client.mjs, OutboxDecodeHeaders), in JavaScript. */
export function decodeHeaders(buf: Buffer): [string, Buffer][] {
  const end = 4 + buf.readUInt32BE(0);
  const out: [string, Buffer][] = [];
  let at = 4;
  while (at < end) {
    const nameLength = buf.readUInt32BE(at);
    const name = buf.subarray(at + 4, at + 4 + nameLength).toString('utf8');
    at += 4 + nameLength;
    const valueLength = buf.readUInt32BE(at);
    out.push([name, Buffer.from(buf.subarray(at + 4, at + 4 + valueLength))]);
    at += 4 + valueLength;
  }
  if (at !== end) throw new Error(`encoded headers end at ${at}, their length says ${end}`);
  return out;
}
