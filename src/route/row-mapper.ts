import type { SourceTransaction } from '../checkpoint/ack-tracker.js';
import type { TableMapping } from '../config/types.js';
import { RecentText, type RelationMessage, type TupleValues } from '../decode/pgoutput.js';
import { RelayError, type ErrorCode } from '../errors.js';
import { formatLsn } from '../lsn.js';
import { CLOUDEVENT_HEADERS, compileEnvelope, contentTypeOf, parsePgTimestamp, type Envelope } from './envelope.js';
import { recordSize, type OutboxEvent } from './event.js';
import { compileEventFilter, type EventFilterFn } from './filters.js';
import { headerValues } from './header-values.js';
import { columnListFix } from '../ops/publication-sql.js';
import { mappedColumns, unmappedColumns } from './mapped-columns.js';
import { compileTopicRouting } from './routing-rules.js';
import { quotedValue, type TopicTemplate } from './topic-template.js';
import { namedEvent } from './logged-id.js';
import { compileTraceContext, type TraceContextFn } from './trace-context.js';
import { transactionHeaders } from './transaction-headers.js';

const BYTEA_OID = 17;

/** Record headers the relay sets itself; a row's `headers` column never provides them (see `reservedHeaders`). */
export const HEADER = {
  id: 'id',
  type: 'type',
  aggregateType: 'aggregate-type',
  aggregateId: 'aggregate-id',
  lsn: 'outbox-lsn',
  commitTime: 'outbox-commit-time',
  xid: 'outbox-xid',
  contentType: 'content-type',
} as const;

const RESERVED: ReadonlySet<string> = new Set(Object.values(HEADER));
const RESERVED_WITH_ENVELOPE: ReadonlySet<string> = new Set([...RESERVED, ...CLOUDEVENT_HEADERS]);

/**
 * The names an event's own headers (a row's headers column, a logical message's "headers") leave out, also where the
 * relay sets no such header (a NULL type): a consumer reading `type` gets the type column or nothing, never a key the
 * writer put in its place. With the CloudEvents envelope, its `ce_` attributes too.
 */
export function reservedHeaders(envelope: boolean): ReadonlySet<string> {
  return envelope ? RESERVED_WITH_ENVELOPE : RESERVED;
}

export interface RowMapperOptions {
  /**
   * The rows are read from the table (republish), not decoded from the WAL: they have no commit LSN or xid, so a
   * refusal names the row by its id instead of the made-up position of the stand-in transaction.
   */
  fromTable?: boolean;
  /**
   * The database's server_encoding is SQL_ASCII (pre-flight): PostgreSQL stores text bytes as written, UTF-8 or
   * not, and pre-flight has it send them so. The columns whose text the record carries or is routed by are then checked, and a value that is
   * not UTF-8 is refused, where decoding it would turn each such byte into U+FFFD and tell different values apart
   * no more (two ids one key). Other databases convert to UTF-8 themselves and pay nothing.
   */
  utf8Unchecked?: boolean;
  /** The publication streaming the rows, for the fix of a column its column list leaves out. */
  publication?: string;
}

/**
 * Turns an outbox row (pgoutput text-format values) into a Kafka record. Compiled per Relation message, so a
 * schema change mid-stream is checked once, when PostgreSQL announces it, and column lookups are indexes.
 */
export class RowMapper {
  private constructor(
    /** schema.table, as the Relation message it was compiled from named it. */
    readonly table: string,
    /** How many columns the Relation message it was compiled from has: an Insert of the table has as many. */
    readonly columns: number,
    private readonly index: Record<keyof TableMapping['columns'], number | undefined>,
    private readonly columnIndex: Map<string, number>,
    private readonly payloadIsBytea: boolean,
    private readonly topic: TopicTemplate,
    private readonly contentType: string,
    private readonly filter: EventFilterFn | undefined,
    private readonly envelope: Envelope | undefined,
    private readonly tombstones: boolean,
    private readonly traceContext: TraceContextFn | undefined,
    /** Per column: its last value, for the columns whose values repeat (TupleValues.recentText). */
    private readonly recent: RecentText[],
    private readonly fromTable: boolean,
    /** With utf8Unchecked: the columns checked for UTF-8 (RowMapperOptions), else undefined. */
    private readonly checkedUtf8: number[] | undefined,
    /** With utf8Unchecked: the columns the filters judge a row by, else undefined. */
    private readonly filterUtf8: number[] | undefined,
  ) {}

  static compile(relation: RelationMessage, mapping: TableMapping, options: RowMapperOptions = {}): RowMapper {
    const table = `${relation.schema}.${relation.table}`;
    const columnIndex = new Map(relation.columns.map((c, i) => [c.name, i]));
    const mappedList = mappedColumns(mapping);
    for (const { column, setting, instead } of mappedList) {
      if (columnIndex.has(column)) continue;
      // The relation lists what the publication sends: with a column list, that list.
      const sent = relation.columns.map((c) => c.name);
      const listed = [...new Set([...sent, ...mappedList.map((m) => m.column)])];
      const unmapped = unmappedColumns(mapping, sent);
      // Renaming the column back does not help: the WAL of every event written since the rename carries the new name.
      throw new RelayError('SCHEMA_COLUMN_MISSING', `column "${column}" (${setting}) is missing from ${table}: it was dropped or renamed, the publication's column list leaves it out, or it is a generated column`, {
        hint:
          `a column list (CREATE/ALTER PUBLICATION … TABLE ${table} (…)): ${columnListFix(relation.schema, relation.table, options.publication, undefined, listed)} ` +
          'a generated column (GENERATED ALWAYS AS … STORED): pgoutput leaves those out (before PostgreSQL 18, and without publish_generated_columns after), so map a column the writer fills, e.g. in the same INSERT; ' +
          `else ${instead("the column's new name")} and restart (columns of ${table} no setting maps: ${unmapped.join(', ') || 'none'}); ` +
          'renaming the column back does not work, because the events written since the rename carry the new name in the WAL. ' +
          'The relay stopped before this event and did not confirm past it',
        details: { table, column, columns: sent },
      });
    }
    const c = mapping.columns;
    const at = (column: string | undefined) => (column === undefined ? undefined : columnIndex.get(column));
    const index = {
      id: at(c.id),
      key: at(c.key),
      payload: at(c.payload),
      type: at(c.type),
      aggregateType: at(c.aggregateType),
      aggregateId: at(c.aggregateId),
      headers: at(c.headers),
      timestamp: at(c.timestamp),
    };
    const topic = compileTopicRouting(mapping);
    const payloadType = relation.columns[index.payload!]!.typeOid;
    const envelope = compileEnvelope(mapping.envelope, `/${relation.schema}/${relation.table}`);
    const tombstones = mapping.nullPayload === 'tombstone';
    // The payload is not decoded: its bytes are sent as stored.
    const read = [index.id, index.key, index.type, index.aggregateType, index.aggregateId, index.headers, index.timestamp, ...topic.columns.map((name) => columnIndex.get(name))];
    const checkedUtf8 = options.utf8Unchecked ? [...new Set(read.filter((i) => i !== undefined))] : undefined;
    // The filters read the type and aggregate type columns (compileEventFilter): a row is judged by them when they are UTF-8.
    const f = mapping.filter ?? {};
    const filterUtf8 = options.utf8Unchecked ? [f.includeTypes || f.excludeTypes ? index.type : undefined, f.includeAggregateTypes || f.excludeAggregateTypes ? index.aggregateType : undefined].filter((i) => i !== undefined) : undefined;
    return new RowMapper(table, relation.columns.length, index, columnIndex, payloadType === BYTEA_OID, topic, contentTypeOf(payloadType), compileEventFilter(mapping), envelope, tombstones, compileTraceContext(columnIndex), relation.columns.map(() => new RecentText()), options.fromTable ?? false, checkedUtf8, filterUtf8);
  }

  /**
   * False for a row the table's include/exclude filters leave out. A row with a value missing (unchanged TOAST)
   * is let through, not judged on a NULL it does not have, and so is one whose filtered column is not UTF-8 (not
   * judged on U+FFFD): `map` refuses them, so they meet the poison policy. A row the filters leave out by UTF-8
   * values is left out, whatever its other columns hold: it would never be relayed, and is no reason to halt.
   */
  accepts(values: TupleValues): boolean {
    return this.filter === undefined || values.unchanged >= 0 || (this.filterUtf8 !== undefined && this.filterUtf8.some((i) => !values.isUtf8(i))) || this.withRow(values, this.filter);
  }

  /**
   * A row `map` refused, as an event carrying what the row had (the key column's value as key, else the id; the
   * payload as value; the topic if it can be computed; the type, aggregate and headers columns' text), so that the
   * poison policy can dead-letter it in its place in the stream. The dead letter may be the only copy left once
   * delivered rows are deleted: keyed by the id alone and without those columns, a re-send lost its partition (the
   * aggregate's order) and its type and headers.
   */
  unmappable(values: TupleValues, txn: SourceTransaction, error: RelayError): OutboxEvent {
    const index = this.index;
    const eventId = textOf(values, index.id) ?? '';
    let topic = '';
    try {
      topic = this.withRow(values, this.renderTopic);
    } catch (err) {
      if (!(err instanceof RelayError)) throw err;
    }
    // A bytea payload not in hex format (or missing) goes as stored: it may be what the row was refused for.
    const value = (this.payloadIsBytea && values.bytea(index.payload!)) || (values.copy(index.payload!) ?? null);
    const id = this.storedOf(values, index.id);
    const keyValue = this.storedOf(values, index.key);
    const key = keyValue?.length ? keyValue : id?.length ? id : null;
    const headers: Record<string, string | Buffer> = { [HEADER.lsn]: formatLsn(txn.commitLsn), [HEADER.xid]: String(txn.xid), 'outbox-table': this.table };
    if (id?.length) headers[HEADER.id] = id;
    for (const [name, i] of [[HEADER.type, index.type], [HEADER.aggregateType, index.aggregateType], [HEADER.aggregateId, index.aggregateId]] as const) {
      const stored = this.storedOf(values, i);
      if (stored?.length) headers[name] = stored;
    }
    // As stored, not parsed: it may be what the row was refused for.
    const rowHeaders = this.storedOf(values, index.headers);
    if (rowHeaders?.length && rowHeaders !== '{}') headers['outbox-dlq-row-headers'] = rowHeaders;
    return { topic, key, value, headers, eventId, size: recordSize(topic, key, value, headers), txn, error };
  }

  /**
   * No closure is created per row (this runs for every event of a drain): values are read with `textOf`, and
   * the topic template reads the row through `withRow`.
   */
  map(values: TupleValues, txn: SourceTransaction): OutboxEvent {
    const index = this.index;
    const eventId = textOf(values, index.id);
    if (values.unchanged >= 0) {
      // Read as NULL, a missing payload would become a tombstone (mapping.nullPayload) and a missing type a filtered row.
      return this.fail(eventId, txn, `column "${this.columnName(values.unchanged)}" came as an unchanged TOAST value, which an INSERT never has: the value is not in the WAL message`, undefined, 'RECORD_INVALID');
    }
    if (this.checkedUtf8 !== undefined) {
      const i = this.notUtf8(values);
      if (i !== undefined) {
        const column = this.columnName(i);
        return this.fail(eventId, txn, `column "${column}" is not UTF-8: the database's server_encoding is SQL_ASCII, which stores text bytes unchecked, and read as UTF-8 each byte that is not would become U+FFFD (different values one text: Müller and Mäller in LATIN1 one key)`, undefined, 'RECORD_INVALID', {
          hint:
            'write UTF-8 into the outbox table (a SQL_ASCII database converts nothing, whatever client_encoding the writer sets), ' +
            "or move the database to UTF8: pg_dump it, convert the dump's text from the writers' encoding (iconv -f LATIN1 -t UTF-8), restore it into a database created with ENCODING 'UTF8'",
          details: { table: this.table, column },
        });
      }
    }
    if (eventId === null) return this.fail(eventId, txn, 'the id column is NULL');
    // The key is the id unless the mapping names another column: then the same text, decoded once.
    const keyText = index.key === index.id ? eventId : textOf(values, index.key);
    if (keyText === null) return this.fail(eventId, txn, 'the key column is NULL');

    const rowHeaders = this.recentOf(values, index.headers);
    const type = this.recentOf(values, index.type);
    const aggregateType = this.recentOf(values, index.aggregateType);
    const aggregateId = textOf(values, index.aggregateId);
    const shared = transactionHeaders(txn);
    let headers: Record<string, string | Buffer>;
    // Whether all the record's text is ASCII, so that its size needs no scan: the relay's own names and values are,
    // the row's are when they decoded to a character per byte, what the trace context and the envelope add they say.
    let ascii = asciiText(values, index.id, eventId) && asciiText(values, index.key, keyText) && asciiText(values, index.type, type) && asciiText(values, index.aggregateType, aggregateType) && asciiText(values, index.aggregateId, aggregateId);
    // '{}' is the column's default: most rows have no headers of their own, and need no JSON.parse.
    if ((rowHeaders === null || rowHeaders === '{}') && type !== null && aggregateType !== null && aggregateId !== null && !this.traceContext) {
      // The usual row as one literal, in the order of the general case below: an object of its exact size, where
      // adding the headers one by one grows a separate property store.
      headers = { id: eventId, type, 'aggregate-type': aggregateType, 'aggregate-id': aggregateId, 'outbox-lsn': shared.lsn, 'outbox-commit-time': shared.commitTime, 'outbox-xid': shared.xid, 'content-type': this.contentType };
    } else {
      headers = {};
      if (rowHeaders !== null && rowHeaders !== '{}') {
        try {
          // Spread, not assigned: a "__proto__" header stays a header (assignment would set the prototype).
          headers = { ...headerValues(rowHeaders, reservedHeaders(this.envelope !== undefined)) };
          // A JSON escape (\u00fc) spells any character in ASCII text.
          ascii &&= asciiText(values, index.headers, rowHeaders) && !rowHeaders.includes('\\u');
        } catch (err) {
          return this.fail(eventId, txn, `the headers column is not a JSON object (${(err as Error).message})`, err, 'RECORD_INVALID');
        }
      }
      headers[HEADER.id] = eventId;
      if (type !== null) headers[HEADER.type] = type;
      if (aggregateType !== null) headers[HEADER.aggregateType] = aggregateType;
      if (aggregateId !== null) headers[HEADER.aggregateId] = aggregateId;
      if (this.traceContext?.(values, headers) === false) ascii = false;
      headers[HEADER.lsn] = shared.lsn;
      headers[HEADER.commitTime] = shared.commitTime;
      headers[HEADER.xid] = shared.xid;
      headers[HEADER.contentType] = this.contentType;
    }
    const eventTime = textOf(values, index.timestamp);
    let timestampMs: number | undefined;
    try {
      if (eventTime !== null) timestampMs = parsePgTimestamp(eventTime);
    } catch (err) {
      return this.fail(eventId, txn, 'the timestamp column is not a date and time', err, 'RECORD_INVALID');
    }
    if (this.envelope) {
      if (type === null) return this.fail(eventId, txn, 'the type column is NULL (CloudEvents requires ce_type)');
      if (!this.envelope(headers, { id: eventId, type, subject: aggregateId, timeMs: timestampMs ?? txn.commitTimeMs })) ascii = false;
    }

    let topic: string;
    try {
      topic = this.withRow(values, this.renderTopic);
    } catch (err) {
      if (err instanceof RelayError) {
        const { where, details } = this.position(eventId, txn);
        throw err.within(where, details);
      }
      throw err;
    }

    // The record's own copy: the decoded message is a view into the client's receive buffer, which it reuses. An
    // unchanged value was refused above: undefined is a bytea value not in hex format.
    const value = this.payloadIsBytea ? values.bytea(index.payload!) : values.copy(index.payload!);
    // A NULL payload would be a Kafka tombstone: only on request (mapping.nullPayload), never silently.
    if (value === null && !this.tombstones) return this.fail(eventId, txn, 'the payload column is NULL');
    if (value === undefined) return this.fail(eventId, txn, 'the payload column\'s bytea value is not in hex format', undefined, 'RECORD_INVALID', { hint: "set bytea_output = 'hex' (the default) on the server" });
    // The key stays the text (mostly the id's own string): the clients encode it as they copy it, and an event in
    // flight holds one object fewer through garbage collections.
    const size = recordSize(topic, keyText, value, headers, ascii);
    return timestampMs === undefined ? { topic, key: keyText, value, headers, eventId, size, txn } : { topic, key: keyText, value, headers, timestampMs, eventId, size, txn };
  }

  /**
   * Runs `read` (a filter, the topic routing) with a reader of the row's columns by name. The reader is one
   * function per mapper, reading the row set here, instead of a closure over each row.
   */
  private withRow<R>(values: TupleValues, read: (valueOf: (column: string) => string | null) => R): R {
    this.row = values;
    try {
      return read(this.columnText);
    } finally {
      this.row = undefined;
    }
  }

  private row: TupleValues | undefined;
  /** Columns read by name are those of filters and topic routing: types and names, which repeat from row to row. */
  private readonly columnText = (column: string): string | null => this.recentOf(this.row!, this.columnIndex.get(column));
  private recentOf(values: TupleValues, i: number | undefined): string | null {
    return i === undefined ? null : values.recentText(i, this.recent[i]!);
  }
  private readonly renderTopic = (valueOf: (column: string) => string | null): string => this.topic.render(valueOf);

  private fail(eventId: string | null, txn: SourceTransaction, message: string, cause?: unknown, code: ErrorCode = 'RECORD_REQUIRED_NULL', more: { hint?: string; details?: Record<string, unknown> } = {}): never {
    const { where, details } = this.position(eventId, txn);
    throw new RelayError(code, `${message} in ${this.table} (${where})`, { cause, hint: more.hint, details: { ...more.details, ...details } });
  }

  /**
   * A column's value for a dead letter: its text, or its bytes as stored where they are not UTF-8 (SQL_ASCII, what
   * the row may have been refused for): decoded, each such byte became U+FFFD, and the dead letters of LATIN1 ids
   * Müller and Mäller had one id and one key, the partition and the tell-apart lost with the bytes.
   */
  private storedOf(values: TupleValues, i: number | undefined): string | Buffer | null {
    if (i === undefined) return null;
    return this.checkedUtf8 !== undefined && !values.isUtf8(i) ? values.copy(i)! : values.text(i);
  }

  /** The first checked column whose value is not UTF-8 (checkedUtf8), else undefined. */
  private notUtf8(values: TupleValues): number | undefined {
    return this.checkedUtf8?.find((i) => !values.isUtf8(i));
  }

  private columnName(i: number): string {
    return [...this.columnIndex].find(([, c]) => c === i)?.[0] ?? `#${i + 1}`;
  }

  /**
   * Which event a refusal is about: in the WAL, by its id and commit; read from the table, by its row's id alone. The
   * message quotes the id as it quotes other row values (quotedValue); the details keep it whole; a log line, /readyz and
   * a --json error carry it by idFields (loggedDetails), bounded as the message.
   */
  private position(eventId: string | null, txn: SourceTransaction): { where: string; details: Record<string, unknown> } {
    if (this.fromTable) return { where: eventId === null ? 'the row whose id is NULL' : `the row with id ${quotedValue(eventId)}`, details: { eventId } };
    return { where: `${namedEvent(eventId)}, commit LSN ${formatLsn(txn.commitLsn)}`, details: { eventId, lsn: formatLsn(txn.commitLsn), xid: txn.xid } };
  }
}

function textOf(values: TupleValues, i: number | undefined): string | null {
  return i === undefined ? null : values.text(i);
}

/** A NULL (or unmapped) column adds no text. */
function asciiText(values: TupleValues, i: number | undefined, text: string | null): boolean {
  return text === null || values.isAscii(i!, text);
}
