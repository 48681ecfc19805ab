import { isUtf8 } from 'node:buffer';
import type { SourceTransaction } from '../checkpoint/ack-tracker.js';
import type { RelayConfig } from '../config/types.js';
import type { LogicalMessage } from '../decode/pgoutput.js';
import { RelayError, type ErrorCode } from '../errors.js';
import { formatLsn } from '../lsn.js';
import { compileEnvelope, type Envelope } from './envelope.js';
import { recordSize, type OutboxEvent } from './event.js';
import { HEADER, reservedHeaders } from './row-mapper.js';
import { headerValues, topLevelMembers } from './header-values.js';
import { checkTopicName, compileTopicTemplate, type TopicTemplate } from './topic-template.js';
import { namedEvent } from './logged-id.js';
import { transactionHeaders } from './transaction-headers.js';

/**
 * Events emitted with pg_logical_emit_message(true, prefix, content) instead of an outbox row. The content is
 * one line of JSON metadata, a newline, then the payload bytes (sql/004_emit_event.sql writes it):
 *   {"id":"…","type":"OrderPlaced","key":"order-1","topic":null,"aggregate_type":"order","aggregate_id":"order-1","headers":{},"content_type":"application/json"}\n<payload>
 * Only the metadata line is parsed; the payload is forwarded byte for byte.
 */
interface MessageMeta {
  id?: unknown;
  type?: unknown;
  key?: unknown;
  topic?: unknown;
  aggregate_type?: unknown;
  aggregate_id?: unknown;
  headers?: unknown;
  content_type?: unknown;
}

const NEWLINE = 0x0a;

/** The placeholders messages.topic may use: a message has no columns, only these fields. */
export const MESSAGE_TOPIC_FIELDS = ['id', 'type', 'key', 'aggregate_type', 'aggregate_id', 'prefix'] as const;

export class MessageMapper {
  private readonly prefixes: Set<string>;
  private readonly topic: TopicTemplate;
  private readonly envelopes = new Map<string, Envelope | undefined>();
  /**
   * The fields messages.topic renders from, set for each message the template names the topic of, and their one
   * reader: an object and a closure made per message were garbage of every event. Every field is set before each
   * render, so none is left from an earlier message.
   */
  private readonly topicFields: Record<string, string | null> = { id: null, type: null, key: null, aggregate_type: null, aggregate_id: null, prefix: null };
  private readonly topicField = (name: string): string | null => this.topicFields[name] ?? null;

  constructor(private readonly config: NonNullable<RelayConfig['messages']>) {
    this.prefixes = new Set(config.prefixes);
    this.topic = compileTopicTemplate(config.topic);
  }

  accepts(prefix: string): boolean {
    return this.prefixes.has(prefix);
  }

  map(msg: LogicalMessage, txn: SourceTransaction): OutboxEvent {
    const newline = msg.content.indexOf(NEWLINE);
    const metaBytes = msg.content.subarray(0, newline < 0 ? msg.content.length : newline);
    const metaText = metaBytes.toString();
    const meta = parseMeta(metaText, msg, txn, isUtf8(metaBytes));
    let members: Map<string, string> | undefined;
    const notText: string[] = [];
    const field = (name: keyof MessageMeta): string | null => {
      const v = meta[name];
      if (v === undefined || v === null) return null;
      if (typeof v === 'string') return v;
      if (typeof v === 'object') {
        // String() would make every object the key "[object Object]", and an array its items joined.
        notText.push(name);
        return null;
      }
      // A number or boolean as written, as for headers: through a JavaScript number 12345678901234567890 loses digits.
      members ??= new Map(topLevelMembers(metaText));
      return members.get(name) ?? String(v);
    };
    const eventId = field('id');
    if (newline < 0) throw refusal('RECORD_INVALID', msg, txn, eventId, 'no newline between the metadata line and the payload', EMIT_HINT);
    const type = field('type');
    const keyField = field('key');
    const topicField = field('topic');
    const aggregateType = field('aggregate_type');
    const aggregateId = field('aggregate_id');
    const contentType = field('content_type');
    if (notText.length > 0) {
      throw refusal('RECORD_INVALID', msg, txn, eventId, `the metadata's "${notText[0]}" is a JSON ${Array.isArray(meta[notText[0] as keyof MessageMeta]) ? 'array' : 'object'}, not a string`, EMIT_HINT);
    }
    if (eventId === null) throw refusal('RECORD_REQUIRED_NULL', msg, txn, eventId, 'the metadata has no "id"');
    // All the record's text comes from the metadata line or is the relay's own: ASCII when the line decoded to a
    // character per byte and has no \u escape. The content is the application's bytes, not necessarily UTF-8, and a
    // byte that is not decodes to U+FFFD.
    let ascii = metaText.length === newline && !metaText.includes('\uFFFD') && !metaText.includes('\\u');
    const envelope = this.envelopeFor(msg.prefix);
    let headers: Record<string, string | Buffer> = {};
    if (meta.headers !== undefined && meta.headers !== null) {
      // Left out, headers that are not an object would be lost without a word; a row's headers column is refused the same way.
      if (typeof meta.headers !== 'object' || Array.isArray(meta.headers)) {
        throw refusal('RECORD_INVALID', msg, txn, eventId, `the metadata's "headers" is not a JSON object`, EMIT_HINT);
      }
      // The stored text of each value, as for a row's headers column: no JavaScript number round trip.
      const raw = topLevelMembers(metaText).filter(([name]) => name === 'headers').pop()![1];
      // Spread, not assigned: a "__proto__" header stays a header (assignment would set the prototype).
      headers = { ...headerValues(raw, reservedHeaders(envelope !== undefined)) };
    }
    headers[HEADER.id] = eventId;
    if (type !== null) headers[HEADER.type] = type;
    if (aggregateType !== null) headers[HEADER.aggregateType] = aggregateType;
    if (aggregateId !== null) headers[HEADER.aggregateId] = aggregateId;
    const shared = transactionHeaders(txn);
    headers[HEADER.lsn] = shared.lsn;
    headers[HEADER.commitTime] = shared.commitTime;
    headers[HEADER.xid] = shared.xid;
    headers[HEADER.contentType] = contentType ?? 'application/json';
    if (envelope) {
      if (type === null) throw refusal('RECORD_REQUIRED_NULL', msg, txn, eventId, 'the metadata has no "type" (CloudEvents requires ce_type)');
      if (!envelope(headers, { id: eventId, type, subject: aggregateId, timeMs: txn.commitTimeMs })) ascii = false;
    }
    let topic: string;
    try {
      // An empty or illegal name would otherwise reach the client, whose refusal does not name the event.
      if (topicField !== null) topic = checkTopicName(topicField);
      else {
        const fields = this.topicFields;
        fields.id = eventId;
        fields.type = type;
        fields.key = keyField;
        fields.aggregate_type = aggregateType;
        fields.aggregate_id = aggregateId;
        fields.prefix = msg.prefix;
        topic = this.topic.render(this.topicField);
      }
    } catch (err) {
      if (!(err instanceof RelayError)) throw err;
      throw refusal(err.code, msg, txn, eventId, err.message, 'give the message a "topic", or the fields messages.topic uses');
    }
    // As documented (docs/event-shaping.md) and as outbox_emit() writes it: per-aggregate order unless the id is all there is.
    const key = keyField ?? aggregateId ?? eventId;
    const value = Buffer.from(msg.content.subarray(newline + 1));
    return { topic, key, value, headers, eventId, size: recordSize(topic, key, value, headers, ascii), txn };
  }

  /** A message `map` refused: its whole content becomes the value, so the dead letter keeps everything it had. */
  unmappable(msg: LogicalMessage, txn: SourceTransaction, error: RelayError): OutboxEvent {
    const eventId = typeof error.details.eventId === 'string' ? error.details.eventId : '';
    const value = Buffer.from(msg.content);
    const headers = { [HEADER.lsn]: formatLsn(txn.commitLsn), [HEADER.xid]: String(txn.xid), 'outbox-message-prefix': msg.prefix };
    const key = eventId || null;
    return { topic: '', key, value, headers, eventId, size: recordSize('', key, value, headers), txn, error };
  }

  private envelopeFor(prefix: string): Envelope | undefined {
    if (!this.envelopes.has(prefix)) this.envelopes.set(prefix, compileEnvelope(this.config.envelope, `/messages/${prefix}`));
    return this.envelopes.get(prefix);
  }
}

const EMIT_HINT = 'emit events with outbox_emit() from sql/004_emit_event.sql';

/**
 * A message `map` refuses, named by its prefix, id and commit LSN: formatted only here, on the way to the poison
 * policy. Formatted before every message, these were two LSN texts, the quoted id and an object per event.
 */
function refusal(code: ErrorCode, msg: LogicalMessage, txn: SourceTransaction, eventId: string | null, what: string, hint?: string): RelayError {
  const lsn = formatLsn(txn.commitLsn);
  return new RelayError(code, `logical message (prefix "${msg.prefix}", ${namedEvent(eventId)}, commit LSN ${lsn}): ${what}`, {
    details: { eventId, lsn, xid: txn.xid, prefix: msg.prefix },
    hint,
  });
}

/** The metadata line as an object; a refusal names the message by its prefix and commit LSN, as it has no id yet. */
function parseMeta(line: string, msg: LogicalMessage, txn: SourceTransaction, utf8: boolean): MessageMeta {
  // pgoutput sends a Message's content as written, in the database's encoding (no client_encoding conversion): read
  // as UTF-8, each byte that is not would become U+FFFD, and different ids or keys one text (Müller and Mäller in LATIN1).
  if (!utf8) {
    throw metaRefusal(
      msg,
      txn,
      "is not UTF-8: the content of pg_logical_emit_message(…, text) is in the database's encoding, and read as UTF-8 its other bytes would become U+FFFD (Müller and Mäller in LATIN1 one id)",
      undefined,
      "emit events with outbox_emit() from sql/004_emit_event.sql, which writes the metadata as UTF-8 in any database encoding (or pass convert_to(metadata, 'UTF8') to pg_logical_emit_message)",
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw metaRefusal(msg, txn, `is not JSON (${(err as Error).message})`, err);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw metaRefusal(msg, txn, 'is not a JSON object');
  return parsed as MessageMeta;
}

/**
 * A metadata line `parseMeta` refuses, named by the message's prefix and commit LSN (it has no id yet). A module
 * function, not a closure made per message: the bundle names every function made (esbuild keepNames).
 */
function metaRefusal(msg: LogicalMessage, txn: SourceTransaction, what: string, cause?: unknown, hint = EMIT_HINT): RelayError {
  return new RelayError('RECORD_INVALID', `logical message (prefix "${msg.prefix}", commit LSN ${formatLsn(txn.commitLsn)}): the metadata line ${what}`, {
    cause,
    hint,
    details: { lsn: formatLsn(txn.commitLsn), xid: txn.xid, prefix: msg.prefix },
  });
}
