import type { EnvelopeConfig } from '../config/types.js';
import { RelayError } from '../errors.js';

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
 * A timestamp/timestamptz column in PostgreSQL's ISO text output (`2024-05-01 10:11:12.123456+02`) as ms since the
 * epoch. Without an offset (timestamp without time zone) the value is taken as UTC.
 */
export function parsePgTimestamp(text: string): number {
  let iso = text.replace(' ', 'T');
  if (/[+-]\d\d$/.test(iso)) iso += ':00';
  else if (!/([+-]\d\d:\d\d(:\d\d)?|Z)$/.test(iso)) iso += 'Z';
  const ms = Date.parse(iso.replace(/([+-]\d\d:\d\d):\d\d$/, '$1'));
  if (Number.isNaN(ms)) {
    throw new RelayError('RECORD_INVALID', `timestamp "${text}" is not an ISO date and time`, { hint: "keep the server's DateStyle at ISO (the default) and use finite timestamps" });
  }
  return ms;
}
