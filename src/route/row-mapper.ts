import type { Transaction } from '../checkpoint/ack-tracker.js';
import type { TableMapping } from '../config/relay-config.js';
import type { ColumnValue, RelationMessage } from '../decode/pgoutput.js';
import { RelayError } from '../errors.js';
import { formatLsn } from '../lsn.js';
import type { OutboxEvent } from './event.js';
import { compileTopicTemplate, type TopicTemplate } from './topic-template.js';

const BYTEA_OID = 17;

/** Record headers the relay sets itself; a row's `headers` column cannot override them. */
export const HEADER = {
  id: 'id',
  type: 'type',
  aggregateType: 'aggregate-type',
  aggregateId: 'aggregate-id',
  lsn: 'outbox-lsn',
  commitTime: 'outbox-commit-time',
  xid: 'outbox-xid',
} as const;

/**
 * Turns an outbox row (pgoutput text-format values) into a Kafka record. Compiled per Relation message, so a
 * schema change mid-stream is checked once, when PostgreSQL announces it, and column lookups are indexes.
 */
export class RowMapper {
  private constructor(
    private readonly table: string,
    private readonly index: Record<keyof TableMapping['columns'], number | undefined>,
    private readonly columnIndex: Map<string, number>,
    private readonly payloadIsBytea: boolean,
    private readonly topic: TopicTemplate,
  ) {}

  static compile(relation: RelationMessage, mapping: TableMapping): RowMapper {
    const table = `${relation.schema}.${relation.table}`;
    const columnIndex = new Map(relation.columns.map((c, i) => [c.name, i]));
    const find = (column: string | undefined, setting: string): number | undefined => {
      if (column === undefined) return undefined;
      const i = columnIndex.get(column);
      if (i === undefined) {
        throw new RelayError('SCHEMA_COLUMN_MISSING', `column "${column}" (${setting}) is missing from ${table}: it was dropped or renamed`, {
          hint: `restore the column, or point ${setting} at its new name and restart; the relay stopped before this event and did not confirm past it`,
          details: { table, column, columns: relation.columns.map((c) => c.name) },
        });
      }
      return i;
    };
    const c = mapping.columns;
    const index = {
      id: find(c.id, 'mapping.id'),
      key: find(c.key, 'mapping.key'),
      payload: find(c.payload, 'mapping.payload'),
      type: find(c.type, 'mapping.type'),
      aggregateType: find(c.aggregateType, 'mapping.aggregateType'),
      aggregateId: find(c.aggregateId, 'mapping.aggregateId'),
      headers: find(c.headers, 'mapping.headers'),
    };
    const topic = compileTopicTemplate(mapping.topic);
    for (const column of topic.columns) find(column, 'topic');
    const payloadIsBytea = relation.columns[index.payload!]!.typeOid === BYTEA_OID;
    return new RowMapper(table, index, columnIndex, payloadIsBytea, topic);
  }

  map(values: ColumnValue[], txn: Transaction): OutboxEvent {
    const text = (i: number | undefined): string | null => {
      if (i === undefined) return null;
      const v = values[i];
      return v ? v.toString('utf8') : null;
    };
    const eventId = text(this.index.id);
    const fail = (message: string, cause?: unknown): never => {
      throw new RelayError('RECORD_REQUIRED_NULL', `${message} in ${this.table} (event ${eventId ?? 'without id'}, commit LSN ${formatLsn(txn.commitLsn)})`, {
        cause,
        details: { eventId, lsn: formatLsn(txn.commitLsn), xid: txn.xid },
      });
    };
    if (eventId === null) fail('the id column is NULL');
    const keyText = text(this.index.key);
    if (keyText === null) fail('the key column is NULL');

    const headers: Record<string, string | Buffer> = {};
    const rowHeaders = text(this.index.headers);
    // '{}' is the column's default: most rows have no headers of their own, and need no JSON.parse.
    if (rowHeaders !== null && rowHeaders !== '{}') Object.assign(headers, flattenHeaders(rowHeaders));
    headers[HEADER.id] = eventId!;
    const setIf = (name: string, i: number | undefined) => {
      const v = text(i);
      if (v !== null) headers[name] = v;
    };
    setIf(HEADER.type, this.index.type);
    setIf(HEADER.aggregateType, this.index.aggregateType);
    setIf(HEADER.aggregateId, this.index.aggregateId);
    const shared = transactionHeaders(txn);
    headers[HEADER.lsn] = shared.lsn;
    headers[HEADER.commitTime] = shared.commitTime;
    headers[HEADER.xid] = shared.xid;

    let topic: string;
    try {
      topic = this.topic.render((column) => text(this.columnIndex.get(column)));
    } catch (err) {
      if (err instanceof RelayError) {
        throw new RelayError(err.code, `${err.message} (event ${eventId}, commit LSN ${formatLsn(txn.commitLsn)})`, { details: { eventId, lsn: formatLsn(txn.commitLsn) } });
      }
      throw err;
    }

    const raw = values[this.index.payload!];
    const value = raw ? (this.payloadIsBytea ? decodeByteaHex(raw) : Buffer.from(raw)) : null;
    const key = Buffer.from(keyText!, 'utf8');
    let size = key.length + (value?.length ?? 0) + topic.length;
    for (const [k, v] of Object.entries(headers)) size += k.length + v.length;
    return { topic, key, value, headers, eventId: eventId!, size, txn };
  }
}

/** Formatted once per transaction, not per event: a backlog transaction can hold thousands of events. */
let cachedTxn: Transaction | undefined;
let cachedHeaders = { lsn: '', commitTime: '', xid: '' };
function transactionHeaders(txn: Transaction): { lsn: string; commitTime: string; xid: string } {
  if (txn !== cachedTxn) {
    cachedTxn = txn;
    cachedHeaders = { lsn: formatLsn(txn.commitLsn), commitTime: new Date(txn.commitTimeMs).toISOString(), xid: String(txn.xid) };
  }
  return cachedHeaders;
}

/** The row's headers jsonb: each top-level key a header; strings as they are, anything else as JSON text. */
function flattenHeaders(json: string): Record<string, string> {
  const parsed: unknown = JSON.parse(json);
  const out: Record<string, string> = {};
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return out;
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (v === null || v === undefined) continue;
    out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

/** bytea in text format is `\x` followed by hex digits. */
function decodeByteaHex(text: Buffer): Buffer {
  if (text[0] === 0x5c && text[1] === 0x78) return Buffer.from(text.toString('latin1', 2), 'hex');
  throw new RelayError('RECORD_INVALID', 'bytea value is not in hex format', { hint: "set bytea_output = 'hex' (the default) on the server" });
}
