import type { EnvelopeConfig } from '../config/types.js';
import { RelayError } from '../errors.js';
import { quotedValue } from './topic-template.js';

const JSON_OID = 114;
const JSONB_OID = 3802;
const BYTEA_OID = 17;

/** The `content-type` header from the payload column's type: the bytes are forwarded as stored, so this says what they are. */
export function contentTypeOf(typeOid: number): string {
  if (typeOid === JSON_OID || typeOid === JSONB_OID) return 'application/json';
  if (typeOid === BYTEA_OID) return 'application/octet-stream';
  return 'text/plain';
}

export interface CloudEventFields {
  id: string;
  type: string;
  subject: string | null;
  timeMs: number;
}

/** The attributes the envelope sets: an event's own headers never provide them (`ce_subject` included, which a NULL aggregate id leaves out). */
export const CLOUDEVENT_HEADERS = ['ce_specversion', 'ce_id', 'ce_type', 'ce_source', 'ce_time', 'ce_subject'] as const;

/**
 * CloudEvents 1.0, Kafka protocol binding, binary content mode: the attributes travel as `ce_` headers and the
 * value stays the payload exactly as stored, so consumers that ignore CloudEvents see no change and the relay
 * never parses or re-serialises the payload. `datacontenttype` is the `content-type` header set for every record.
 * Returns whether the text it adds besides `fields` is ASCII (known without a scan, for the record size).
 */
export type Envelope = (headers: Record<string, string | Buffer>, fields: CloudEventFields) => boolean;

export function compileEnvelope(config: EnvelopeConfig, defaultSource: string): Envelope | undefined {
  if (config.mode === 'none') return undefined;
  const source = config.source ?? defaultSource;
  const asciiSource = Buffer.byteLength(source) === source.length;
  return (headers, fields) => {
    headers.ce_specversion = '1.0';
    headers.ce_id = fields.id;
    headers.ce_type = fields.type;
    headers.ce_source = source;
    headers.ce_time = new Date(fields.timeMs).toISOString();
    if (fields.subject !== null) headers.ce_subject = fields.subject;
    return asciiSource;
  };
}

/**
 * PostgreSQL's ISO output of a date, timestamp or timestamptz (`2024-05-01 10:11:12.123456+02`; --since and --until
 * also take `T` and `Z`): date, then optionally the time (seconds and fraction optional) and an offset. BC dates,
 * years past 9999 (which RFC 3339, and so ce_time, cannot write), infinity and anything else do not match.
 */
const PG_TIMESTAMP = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?(?:Z|([+-])(\d\d)(?::(\d\d)(?::(\d\d))?)?)?)?$/i;

/**
 * A timestamp/timestamptz column in PostgreSQL's ISO text output (`2024-05-01 10:11:12.123456+02`) as ms since the
 * epoch. Without an offset (timestamp without time zone) the value is taken as UTC. Read field by field, not with
 * Date.parse: what is not ISO it parses its own way, without a word (a date 0044-03-15 as 2044, the text "12" as
 * 2001-12-01, 2024-02-30 as 1 March), and the record would carry that time.
 */
export function parsePgTimestamp(text: string): number {
  const m = PG_TIMESTAMP.exec(text);
  const ms = m === null ? NaN : timestampMs(m.slice(1).map((field) => field ?? ''));
  if (Number.isNaN(ms)) {
    throw new RelayError('RECORD_INVALID', `timestamp ${quotedValue(text)} is not an ISO date and time`, { hint: "keep the server's DateStyle at ISO (the default) and use finite timestamps from the year 1 to 9999" });
  }
  return ms;
}

/** PG_TIMESTAMP's fields ('' where absent) as ms since the epoch; NaN for a date or time that does not exist. */
function timestampMs([year, month, day, hours, minutes, seconds, fraction, sign, offsetHours, offsetMinutes, offsetSeconds]: string[]): number {
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, takes the years 0 to 99 as they are, not as 1900 to 1999.
  date.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  date.setUTCHours(Number(hours), Number(minutes), Number(seconds), Number(fraction!.slice(0, 3).padEnd(3, '0')));
  // Out of range fields roll over (February 30 into March, 24:00 into the next day): the fields must come back as given.
  const exists = Number(year) > 0 && date.getUTCMonth() === Number(month) - 1 && date.getUTCDate() === Number(day) && date.getUTCHours() === Number(hours) && date.getUTCMinutes() === Number(minutes) && date.getUTCSeconds() === Number(seconds);
  if (!exists || Number(offsetMinutes) > 59 || Number(offsetSeconds) > 59) return NaN;
  const offsetMs = ((Number(offsetHours) * 60 + Number(offsetMinutes)) * 60 + Number(offsetSeconds)) * 1000;
  return date.getTime() - (sign === '-' ? -offsetMs : offsetMs);
}
