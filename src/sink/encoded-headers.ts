/**
 * The headers of a batch's records for the librdkafka client's patched batch produce
 * (scripts/patch-kafka-client.mjs), one encoded set per record, back to back in one Buffer: per set, u32 BE byte
 * length of the rest, then per header u32 BE name length, name (UTF-8), u32 BE value length, value. The addon
 * copies the headers into librdkafka's messages during the call, so one buffer serves every batch.
 */
export class HeaderSets {
  private buffer = Buffer.allocUnsafe(INITIAL_BYTES);
  private length = 0;

  /** Starts the next batch's sets; the bytes given out before are overwritten. */
  reset(): void {
    // A batch of unusually large headers should not keep its buffer for the life of the process.
    if (this.buffer.length > RETAINED_BYTES) this.buffer = Buffer.allocUnsafe(INITIAL_BYTES);
    this.length = 0;
  }

  add(headers: Record<string, string | Buffer>): void {
    let end = encodeInto(this.buffer, this.length, headers);
    if (end === undefined) {
      this.grow(upperBound(headers));
      end = encodeInto(this.buffer, this.length, headers)!;
    }
    this.length = end;
  }

  /** The sets added since the last reset, valid until the next add or reset. */
  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  private grow(needed: number): void {
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + needed));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }
}

const INITIAL_BYTES = 256 * 1024;
/** A default batch (5,000 records) of the relay's eight headers takes about 1.3 MB. */
const RETAINED_BYTES = 4 * 1024 * 1024;

/** One pass, checking the bound per header (measuring all first took 1.25–1.58 µs for the relay's eight headers, this 0.78–1.06); undefined when `out` may be too small. */
function encodeInto(out: Buffer, start: number, headers: Record<string, string | Buffer>): number | undefined {
  if (start + 4 > out.length) return undefined;
  let at = start + 4;
  for (const name in headers) {
    const value = headers[name]!;
    if (at + headerBound(name, value) > out.length) return undefined;
    at = writeText(out, name, at);
    if (typeof value === 'string') {
      at = writeText(out, value, at);
    } else {
      writeU32(out, value.length, at);
      value.copy(out, at + 4);
      at += 4 + value.length;
    }
  }
  writeU32(out, at - start - 4, start);
  return at;
}

function upperBound(headers: Record<string, string | Buffer>): number {
  let bound = 4;
  for (const name in headers) bound += headerBound(name, headers[name]!);
  return bound;
}

/** UTF-8 takes at most 3 bytes per UTF-16 code unit, so a header within this bound cannot overflow. */
function headerBound(name: string, value: string | Buffer): number {
  return 8 + 3 * name.length + (typeof value === 'string' ? 3 * value.length : value.length);
}

/** Length-prefixed UTF-8. ASCII (all of the relay's own headers) is written in a loop: for short strings that is several times cheaper than a native write call. */
function writeText(out: Buffer, text: string, at: number): number {
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
  writeU32(out, end - start, at);
  return end;
}

/** Big-endian, inline: Buffer#writeUInt32BE's argument checks cost more than the write. */
function writeU32(out: Buffer, n: number, at: number): void {
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
}
