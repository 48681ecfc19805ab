/**
 * A record's headers as one Buffer for the librdkafka client's patched produce (scripts/patch-kafka-client.mjs):
 * u32 BE byte length of the rest, then per header u32 BE name length, name (UTF-8), u32 BE value length, value.
 * The addon copies the headers into librdkafka's message during produce(), so one scratch buffer serves every
 * record: the result is valid until the next call.
 */

/** The format version the addon's `outboxEncodedHeaders()` must return. */
export const ENCODED_HEADERS_VERSION = 1;

/** Header sets up to this size reuse the scratch buffer; a larger one (a row's big headers column) gets its own, so the scratch never grows past it. */
const SCRATCH_BYTES = 16 * 1024;
const scratch = Buffer.allocUnsafe(SCRATCH_BYTES);

export function encodeHeaders(headers: Record<string, string | Buffer>): Buffer {
  // An upper bound (UTF-8 takes at most 3 bytes per UTF-16 code unit), so no write can overflow.
  let bound = 4;
  for (const name in headers) {
    const value = headers[name]!;
    bound += 8 + 3 * name.length + (typeof value === 'string' ? 3 * value.length : value.length);
  }
  const out = bound <= SCRATCH_BYTES ? scratch : Buffer.allocUnsafe(bound);
  let at = 4;
  for (const name in headers) {
    at = writeSized(out, name, at);
    const value = headers[name]!;
    if (typeof value === 'string') {
      at = writeSized(out, value, at);
    } else {
      out.writeUInt32BE(value.length, at);
      value.copy(out, at + 4);
      at += 4 + value.length;
    }
  }
  out.writeUInt32BE(at - 4, 0);
  return out;
}

/** Length-prefixed UTF-8. ASCII (all of the relay's own headers) is written in a loop: for short strings that is several times cheaper than a native write call. */
function writeSized(out: Buffer, text: string, at: number): number {
  const start = at + 4;
  let end = start;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) {
      end = start + out.write(text, start, 'utf8');
      break;
    }
    out[end++] = c;
  }
  out.writeUInt32BE(end - start, at);
  return end;
}
