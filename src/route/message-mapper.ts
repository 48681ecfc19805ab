import type { SourceTransaction } from '../checkpoint/ack-tracker.js';
import type { RelayConfig } from '../config/types.js';
import type { LogicalMessage } from '../decode/pgoutput.js';
import { RelayError } from '../errors.js';
import { formatLsn } from '../lsn.js';
import { compileEnvelope, type Envelope } from './envelope.js';
import { recordSize, type OutboxEvent } from './event.js';
import { HEADER } from './row-mapper.js';
import { headerValues, topLevelMembers } from './header-values.js';
import { compileTopicTemplate, type TopicTemplate } from './topic-template.js';

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

export class MessageMapper {
  private readonly prefixes: Set<string>;
  private readonly topic: TopicTemplate;
  private readonly envelopes = new Map<string, Envelope | undefined>();

  constructor(private readonly config: NonNullable<RelayConfig['messages']>) {
    this.prefixes = new Set(config.prefixes);
    this.topic = compileTopicTemplate(config.topic);
  }

  accepts(prefix: string): boolean {
    return this.prefixes.has(prefix);
  }

  map(msg: LogicalMessage, txn: SourceTransaction): OutboxEvent {
    const newline = msg.content.indexOf(NEWLINE);
    const metaText = msg.content.toString('utf8', 0, newline < 0 ? msg.content.length : newline);
    const meta = parseMeta(metaText);
    const field = (name: keyof MessageMeta): string | null => {
      const v = meta[name];
      return v === undefined || v === null ? null : String(v);
    };
    const eventId = field('id');
    const where = `logical message (prefix "${msg.prefix}", event ${eventId ?? 'without id'}, commit LSN ${formatLsn(txn.commitLsn)})`;
    const details = { eventId, lsn: formatLsn(txn.commitLsn), xid: txn.xid, prefix: msg.prefix };
    if (newline < 0) throw new RelayError('RECORD_INVALID', `${where}: no newline between the metadata line and the payload`, { details, hint: 'emit events with outbox_emit() from sql/004_emit_event.sql' });
    if (eventId === null) throw new RelayError('RECORD_REQUIRED_NULL', `${where}: the metadata has no "id"`, { details });
    const type = field('type');
    const headers: Record<string, string | Buffer> = {};
    if (meta.headers !== null && typeof meta.headers === 'object' && !Array.isArray(meta.headers)) {
      // The stored text of each value, as for a row's headers column: no JavaScript number round trip.
      const raw = topLevelMembers(metaText).filter(([name]) => name === 'headers').pop()![1];
      Object.assign(headers, headerValues(raw));
    }
    headers[HEADER.id] = eventId;
    if (type !== null) headers[HEADER.type] = type;
    const aggregateType = field('aggregate_type');
    const aggregateId = field('aggregate_id');
    if (aggregateType !== null) headers[HEADER.aggregateType] = aggregateType;
    if (aggregateId !== null) headers[HEADER.aggregateId] = aggregateId;
    headers[HEADER.lsn] = formatLsn(txn.commitLsn);
    headers[HEADER.commitTime] = new Date(txn.commitTimeMs).toISOString();
    headers[HEADER.xid] = String(txn.xid);
    headers[HEADER.contentType] = field('content_type') ?? 'application/json';
    const envelope = this.envelopeFor(msg.prefix);
    if (envelope) {
      if (type === null) throw new RelayError('RECORD_REQUIRED_NULL', `${where}: the metadata has no "type" (CloudEvents requires ce_type)`, { details });
      envelope(headers, { id: eventId, type, subject: aggregateId, timeMs: txn.commitTimeMs });
    }
    const values: Record<string, string | null> = { id: eventId, type, key: field('key'), aggregate_type: aggregateType, aggregate_id: aggregateId, prefix: msg.prefix };
    let topic: string;
    try {
      topic = field('topic') ?? this.topic.render((name) => values[name] ?? null);
    } catch (err) {
      if (!(err instanceof RelayError)) throw err;
      throw new RelayError(err.code, `${where}: ${err.message}`, { details, hint: 'give the message a "topic", or the fields messages.topic uses' });
    }
    const key = field('key') ?? eventId;
    const value = Buffer.from(msg.content.subarray(newline + 1));
    return { topic, key, value, headers, eventId, size: recordSize(topic, key, value, headers), txn };
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

function parseMeta(line: string): MessageMeta {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw new RelayError('RECORD_INVALID', `logical message metadata is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new RelayError('RECORD_INVALID', 'logical message metadata is not a JSON object');
  return parsed as MessageMeta;
}
