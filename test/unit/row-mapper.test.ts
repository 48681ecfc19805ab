import { describe, expect, it } from 'vitest';
import { AckTracker } from '../../src/checkpoint/ack-tracker.js';
import { loadConfig } from '../../src/config/relay-config.js';
import type { TableMapping } from '../../src/config/types.js';
import { decodePgOutput, TupleValues, type RelationMessage } from '../../src/decode/pgoutput.js';
import { RelayError } from '../../src/errors.js';
import { recordSize } from '../../src/route/event.js';
import { HEADER, RowMapper, type RowMapperOptions } from '../../src/route/row-mapper.js';
import { insertMessage } from '../support/pgoutput-messages.js';
import { utf8Size } from '../support/record-bytes.js';

const JSONB_OID = 3802;
const TEXT_OID = 25;
const mapping: TableMapping = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092' }, required: [] }).tables[0]!;
const txn = new AckTracker(0n).begin(0x16b3748n, Date.parse('2024-01-01T00:00:00Z'), 42);
const TXN_HEADERS = { [HEADER.lsn]: '0/16B3748', [HEADER.commitTime]: '2024-01-01T00:00:00.000Z', [HEADER.xid]: '42', [HEADER.contentType]: 'application/json' };

function mapperFor(columns: string[], tableMapping: TableMapping = mapping, options?: RowMapperOptions): RowMapper {
  const relation: RelationMessage = {
    tag: 'relation',
    relationId: 0x4001,
    schema: 'public',
    table: 'outbox',
    columns: columns.map((name) => ({ name, typeOid: name === 'payload' ? JSONB_OID : TEXT_OID, isKey: name === 'id' })),
  };
  return RowMapper.compile(relation, tableMapping, options);
}

function values(row: (string | Buffer | null)[]) {
  const msg = decodePgOutput(insertMessage(row));
  if (msg.tag !== 'insert') throw new Error('not an insert');
  return msg.values;
}

const COLUMNS = ['id', 'aggregate_type', 'aggregate_id', 'event_type', 'payload', 'headers'];

describe('row mapping', () => {
  it('a usual row: the relay headers in their documented order, the id as key, the size counted from what is sent', () => {
    const event = mapperFor(COLUMNS).map(values(['e-1', 'order', 'o-1', 'OrderPlaced', '{"a":1}', '{}']), txn);
    expect(Object.entries(event.headers)).toEqual(Object.entries({ [HEADER.id]: 'e-1', [HEADER.type]: 'OrderPlaced', [HEADER.aggregateType]: 'order', [HEADER.aggregateId]: 'o-1', ...TXN_HEADERS }));
    expect(event).toMatchObject({ topic: 'outbox.order', key: 'e-1', eventId: 'e-1', value: Buffer.from('{"a":1}') });
    expect(event.size).toBe(recordSize('outbox.order', 'e-1', Buffer.from('{"a":1}'), event.headers));
  });

  it('rows off the usual shape keep the same order: a NULL leaves its header out, a row’s own headers come first, trace context after the aggregate', () => {
    const withNull = mapperFor(COLUMNS).map(values(['e-1', 'order', null, 'OrderPlaced', '{}', '{}']), txn);
    expect(Object.keys(withNull.headers)).toEqual([HEADER.id, HEADER.type, HEADER.aggregateType, ...Object.keys(TXN_HEADERS)]);
    const own = mapperFor(COLUMNS).map(values(['e-1', 'order', 'o-1', 'OrderPlaced', '{}', '{"tenant":"t-9"}']), txn);
    expect(Object.entries(own.headers)).toEqual(Object.entries({ tenant: 't-9', [HEADER.id]: 'e-1', [HEADER.type]: 'OrderPlaced', [HEADER.aggregateType]: 'order', [HEADER.aggregateId]: 'o-1', ...TXN_HEADERS }));
    const proto = mapperFor(COLUMNS).map(values(['e-1', 'order', 'o-1', 'OrderPlaced', '{}', '{"__proto__":"x"}']), txn);
    expect(Object.entries(proto.headers)[0]).toEqual(['__proto__', 'x']);
    const traced = mapperFor([...COLUMNS, 'traceparent']).map(values(['e-1', 'order', 'o-1', 'OrderPlaced', '{}', '{}', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']), txn);
    expect(Object.keys(traced.headers)).toEqual([HEADER.id, HEADER.type, HEADER.aggregateType, HEADER.aggregateId, 'traceparent', ...Object.keys(TXN_HEADERS)]);
  });

  // Keyed by the id alone, without the type, aggregate and headers columns, a re-send from the dead letter (the only
  // copy once delivered rows are deleted) lost its partition and those columns.
  it('a row refused for its headers column is dead-lettered with the mapping’s key and what else it has: type, aggregate, the headers as stored', () => {
    const keyed = mapperFor(COLUMNS, { ...mapping, columns: { ...mapping.columns, key: 'aggregate_id' } });
    const row = values(['e-1', 'order', 'o-1', 'OrderPlaced', '{"a":1}', '["tenant","t-9"]']);
    let error: unknown;
    try {
      keyed.map(row, txn);
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'RECORD_INVALID' });
    const dead = keyed.unmappable(row, txn, error as RelayError);
    expect(dead).toMatchObject({ topic: 'outbox.order', key: 'o-1', eventId: 'e-1', value: Buffer.from('{"a":1}') });
    expect(dead.headers).toEqual({ [HEADER.lsn]: '0/16B3748', [HEADER.xid]: '42', 'outbox-table': 'public.outbox', [HEADER.id]: 'e-1', [HEADER.type]: 'OrderPlaced', [HEADER.aggregateType]: 'order', [HEADER.aggregateId]: 'o-1', 'outbox-dlq-row-headers': '["tenant","t-9"]' });
    expect(dead.size).toBe(recordSize('outbox.order', 'o-1', Buffer.from('{"a":1}'), dead.headers));
    // A NULL key column: the id, as before.
    expect(keyed.unmappable(values(['e-2', 'order', null, null, '{}', 'x']), txn, error as RelayError)).toMatchObject({ key: 'e-2', headers: { [HEADER.id]: 'e-2' } });
  });

  it('a row’s headers never give the relay’s own headers, not even where the relay leaves one out (a NULL column)', () => {
    const forged = '{"type":"Forged","aggregate-id":"o-x","id":"e-x","outbox-lsn":"0/0","tenant":"t-9"}';
    const event = mapperFor(COLUMNS).map(values(['e-1', 'order', null, null, '{}', forged]), txn);
    expect(Object.entries(event.headers)).toEqual(Object.entries({ tenant: 't-9', [HEADER.id]: 'e-1', [HEADER.aggregateType]: 'order', ...TXN_HEADERS }));
  });

  it('with the CloudEvents envelope, nor its ce_ attributes (ce_subject without an aggregate id); other ce_ keys stay', () => {
    const mapper = mapperFor(COLUMNS, { ...mapping, envelope: { mode: 'cloudevents' } });
    const event = mapper.map(values(['e-1', 'order', null, 'OrderPlaced', '{}', '{"ce_subject":"forged","ce_id":"x","ce_dataschema":"urn:s"}']), txn);
    expect(event.headers).not.toHaveProperty('ce_subject');
    expect(event.headers).toMatchObject({ ce_id: 'e-1', ce_type: 'OrderPlaced', ce_dataschema: 'urn:s' });
  });

  it('the size counts text as UTF-8 bytes, not UTF-16 units: Müller 7, 東京 6, an emoji 4', () => {
    expect(recordSize('t', 'Müller', Buffer.from('v'), { 'aggregate-id': 'Müller', 名前: '東京', e: '😀' })).toBe(1 + 7 + 1 + (12 + 7) + (6 + 6) + (1 + 4));
    expect(recordSize('t', 'Müller', null, { city: 'Köln' }, true)).toBe(1 + 6 + 4 + 4); // the caller vouched for ASCII
  });

  it('a row’s size counts its text as UTF-8, wherever non-ASCII text comes from (and ASCII rows are not counted short either)', () => {
    const rows: [string, string[], (string | null)[], TableMapping?][] = [
      ['ASCII', COLUMNS, ['e-1', 'order', 'o-1', 'OrderPlaced', '{}', '{}']],
      ['usual row', COLUMNS, ['e-ü', 'order', 'Müller', '注文', '{}', '{}']],
      ['own headers', COLUMNS, ['e-1', 'order', 'o-1', 'OrderPlaced', '{}', '{"city":"東京"}']],
      ['JSON escape', COLUMNS, ['e-1', 'order', 'o-1', 'OrderPlaced', '{}', '{"name":"M\\u00fcller"}']],
      ['trace column', [...COLUMNS, 'tracestate'], ['e-1', 'order', 'o-1', 'OrderPlaced', '{}', '{}', 'vendor=é']],
      ['span context escape', [...COLUMNS, 'tracingspancontext'], ['e-1', 'order', 'o-1', 'OrderPlaced', '{}', '{}', 'tracestate=v\\u00e9']],
      ['envelope source', COLUMNS, ['e-1', 'order', 'o-1', 'OrderPlaced', '{}', '{}'], { ...mapping, envelope: { mode: 'cloudevents', source: '/shop/Bäckerei' } }],
      ['envelope subject', COLUMNS, ['e-1', 'order', 'Müller', 'OrderPlaced', '{}', '{}'], { ...mapping, envelope: { mode: 'cloudevents' } }],
    ];
    for (const [what, columns, row, tableMapping] of rows) {
      const event = mapperFor(columns, tableMapping).map(values(row), txn);
      expect(event.size, what).toBe(utf8Size(event));
    }
  });

  // Quoted whole, an id of megabytes made the error as large, and the dead letter carrying it in a header too large.
  it('a refusal quotes an id of 100,000 characters by its first 300 and its length, in the WAL and read from the table; the details keep it whole', () => {
    const id = 'x'.repeat(100_000);
    const quoted = `"${'x'.repeat(300)}…" (100000 characters)`;
    const row = values([id, 'order', 'o-1', 'OrderPlaced', null, '{}']);
    for (const [mapper, where] of [[mapperFor(COLUMNS), `(event ${quoted}, commit LSN 0/16B3748)`], [mapperFor(COLUMNS, mapping, { fromTable: true }), `(the row with id ${quoted})`]] as const) {
      let error: RelayError | undefined;
      try {
        mapper.map(row, txn);
      } catch (err) {
        error = err as RelayError;
      }
      expect(error?.message).toBe(`the payload column is NULL in public.outbox ${where}`);
      expect(error?.details.eventId).toBe(id);
    }
  });

  it('values that repeat from row to row and values that change: each row gets its own type and topic', () => {
    const mapper = mapperFor(COLUMNS);
    const rows: [string, string][] = [['order', 'OrderPlaced'], ['order', 'OrderPlaced'], ['payment', 'OrderPlaced'], ['order', 'OrderShipped'], ['order', 'OrderPlaced']];
    const events = rows.map(([aggregateType, type], i) => mapper.map(values([`e-${i}`, aggregateType, 'o-1', type, '{}', '{}']), txn));
    expect(events.map((e) => [e.topic, e.headers[HEADER.type], e.headers[HEADER.aggregateType], e.key])).toEqual(rows.map(([aggregateType, type], i) => [`outbox.${aggregateType}`, type, aggregateType, `e-${i}`]));
    // A topic that is not legal is refused even right after a legal one.
    expect(() => mapper.map(values(['e-9', 'no/slash', 'o-1', 'OrderPlaced', '{}', '{}']), txn)).toThrow(expect.objectContaining({ code: 'TOPIC_INVALID' }));
    expect(() => mapper.map(values(['e-9', null, 'o-1', 'OrderPlaced', '{}', '{}']), txn)).toThrow(expect.objectContaining({ code: 'RECORD_REQUIRED_NULL' }));
    expect(mapper.map(values(['e-10', 'order', 'o-1', 'OrderPlaced', '{}', '{}']), txn).topic).toBe('outbox.order');
  });
});

describe('row mapping in a SQL_ASCII database (server_encoding), where text comes as stored, UTF-8 or not', () => {
  const latin1 = (text: string) => Buffer.from(text, 'latin1');
  const sqlAscii = (columns: string[], tableMapping: TableMapping = mapping) =>
    RowMapper.compile(
      { tag: 'relation', relationId: 0x4001, schema: 'public', table: 'outbox', columns: columns.map((name) => ({ name, typeOid: name === 'payload' ? JSONB_OID : TEXT_OID, isKey: name === 'id' })) },
      tableMapping,
      { utf8Unchecked: true },
    );
  const refusal = (column: string, event: string) =>
    expect.objectContaining({
      code: 'RECORD_INVALID',
      message: expect.stringMatching(new RegExp(`^column "${column}" is not UTF-8: the database's server_encoding is SQL_ASCII.* in public\\.outbox \\(event "${event}", commit LSN 0/16B3748\\)$`)),
      hint: expect.stringContaining("restore it into a database created with ENCODING 'UTF8'"),
      details: expect.objectContaining({ column, eventId: event }),
    });

  it('LATIN1 ids Müller and Mäller are each a poison event naming the event, the column and the fix, not one key', () => {
    const mapper = sqlAscii(COLUMNS);
    for (const id of ['Müller', 'Mäller']) {
      const row = values([latin1(id), 'order', 'o-1', 'OrderPlaced', '{}', '{}']);
      expect(() => mapper.map(row, txn), id).toThrow(refusal('id', 'M\uFFFDller'));
      // The dead letter keeps the bytes as stored: decoded, both had the id and key M\uFFFDller.
      const dead = mapper.unmappable(row, txn, new RelayError('RECORD_INVALID', 'x'));
      expect(dead).toMatchObject({ topic: 'outbox.order', value: Buffer.from('{}'), key: latin1(id), headers: { [HEADER.id]: latin1(id) } });
      expect(dead.size).toBe(recordSize('outbox.order', latin1(id), Buffer.from('{}'), dead.headers));
    }
    const keyed = sqlAscii(COLUMNS, { ...mapping, columns: { ...mapping.columns, key: 'aggregate_id' } });
    const row = values(['e-1', latin1('Bestellung-ä'), latin1('Bäcker'), 'OrderPlaced', '{}', latin1('{"city":"Köln"}')]);
    expect(keyed.unmappable(row, txn, new RelayError('RECORD_INVALID', 'x'))).toMatchObject({
      key: latin1('Bäcker'),
      headers: { [HEADER.id]: 'e-1', [HEADER.aggregateType]: latin1('Bestellung-ä'), [HEADER.aggregateId]: latin1('Bäcker'), 'outbox-dlq-row-headers': latin1('{"city":"Köln"}') },
    });
  });

  it('so is a value of another column the record carries or is routed by: the key, a header, the topic’s', () => {
    const keyed = sqlAscii([...COLUMNS, 'tenant'], { ...mapping, columns: { ...mapping.columns, key: 'tenant' }, topic: 'outbox.${aggregate_type}' });
    expect(() => keyed.map(values(['e-1', 'order', 'o-1', 'OrderPlaced', '{}', '{}', latin1('Bäcker')]), txn)).toThrow(refusal('tenant', 'e-1'));
    expect(() => keyed.map(values(['e-1', 'order', latin1('Müller'), 'OrderPlaced', '{}', '{}', 't']), txn)).toThrow(refusal('aggregate_id', 'e-1'));
    expect(() => keyed.map(values(['e-1', 'order', 'o-1', 'OrderPlaced', '{}', latin1('{"city":"Köln"}'), 't']), txn)).toThrow(refusal('headers', 'e-1'));
    expect(() => keyed.map(values(['e-1', latin1('Bestellung-ä'), 'o-1', 'OrderPlaced', '{}', '{}', 't']), txn)).toThrow(refusal('aggregate_type', 'e-1'));
  });

  it('a filter lets such a row through to be refused, not judged on U+FFFD (which an exclude glob would drop without a word)', () => {
    const excluding = { ...mapping, filter: { excludeTypes: ['Order*'] } };
    const row = values(['e-1', 'order', 'o-1', latin1('OrderPlacé'), '{}', '{}']);
    expect(sqlAscii(COLUMNS, excluding).accepts(row)).toBe(true);
    expect(() => sqlAscii(COLUMNS, excluding).map(row, txn)).toThrow(refusal('event_type', 'e-1'));
    expect(sqlAscii(COLUMNS, excluding).accepts(values(['e-1', 'order', 'o-1', 'OrderPlacé', '{}', '{}']))).toBe(false);
  });

  it('a row the filters leave out by UTF-8 values stays out, whatever its other columns hold: no poison event (a halt) for it', () => {
    const excluding = { ...mapping, filter: { excludeTypes: ['Internal*'] } };
    const row = values([latin1('Müller'), 'order', latin1('Bäcker'), 'InternalAudit', '{}', '{}']);
    expect(sqlAscii(COLUMNS, excluding).accepts(row)).toBe(false);
    const included = values([latin1('Müller'), 'order', 'o-1', 'OrderPlaced', '{}', '{}']);
    expect(sqlAscii(COLUMNS, excluding).accepts(included)).toBe(true);
    expect(() => sqlAscii(COLUMNS, excluding).map(included, txn)).toThrow(refusal('id', 'M\uFFFDller'));
    const byAggregate = { ...mapping, filter: { includeAggregateTypes: ['order'] } };
    expect(sqlAscii(COLUMNS, byAggregate).accepts(values(['e-1', 'invoice', 'o-1', latin1('Rechnungsänderung'), '{}', '{}']))).toBe(false);
  });

  it('UTF-8 text passes, and so do the payload’s bytes (sent as stored) and columns no setting reads', () => {
    const event = sqlAscii([...COLUMNS, 'note']).map(values(['e-ü', 'order', 'Müller', 'OrderPlaced', latin1('{"n":"Köln"}'), '{}', latin1('Notiz ä')]), txn);
    expect(event).toMatchObject({ key: 'e-ü', value: latin1('{"n":"Köln"}'), headers: { [HEADER.aggregateId]: 'Müller' } });
  });
});

describe('row mapping, a column a setting names is missing from the table', () => {
  it('a placeholder of a topic template is named by the settings whose template has it, and the fix is to rewrite the placeholder', () => {
    const routes = [{ type: 'Order*', topic: 'orders' }, { type: 'Payment*', topic: 'payments.${tenant}' }];
    const cases: [TableMapping, string][] = [
      [{ ...mapping, routes }, 'routes.1.topic'],
      [{ ...mapping, topic: 'outbox.${tenant}', routes }, 'topic and routes.1.topic'],
    ];
    for (const [tableMapping, settings] of cases) {
      expect(() => mapperFor(COLUMNS, tableMapping), settings).toThrow(
        expect.objectContaining({
          code: 'SCHEMA_COLUMN_MISSING',
          message: expect.stringContaining(`column "tenant" (\${tenant} in ${settings}) is missing from public.outbox`),
          hint: expect.stringContaining(`else write the column's new name in place of \${tenant} in ${settings} and restart`),
        }),
      );
    }
    // A mapped column is named by its mapping setting, as before.
    expect(() => mapperFor(COLUMNS.filter((c) => c !== 'event_type'))).toThrow(expect.objectContaining({ message: expect.stringContaining('column "event_type" (mapping.type)'), hint: expect.stringContaining("else set mapping.type to the column's new name") }));
  });

  it("a column list's fix drops and adds the table in one transaction, in the streaming publication: ALTER PUBLICATION … SET TABLE, the fix before, unpublished its other tables", () => {
    const relation: RelationMessage = { tag: 'relation', relationId: 0x4001, schema: 'public', table: 'outbox', columns: COLUMNS.filter((c) => c !== 'headers').map((name) => ({ name, typeOid: TEXT_OID, isKey: false })) };
    expect(() => RowMapper.compile(relation, mapping, { publication: 'outbox_pub' })).toThrow(
      expect.objectContaining({
        code: 'SCHEMA_COLUMN_MISSING',
        hint: expect.stringContaining(
          'BEGIN; ALTER PUBLICATION "outbox_pub" DROP TABLE "public"."outbox"; ALTER PUBLICATION "outbox_pub" ADD TABLE "public"."outbox" ("id", "aggregate_type", "aggregate_id", "event_type", "payload", "headers") [WHERE (its row filter, if it has one)]; COMMIT;',
        ),
      }),
    );
  });
});

describe('row mapping, an unchanged TOAST value in an INSERT', () => {
  // pgoutput never sends 'u' in an INSERT (logical decoding reassembles TOASTed values); if one ever came, the
  // value is not in the message: it must not read as NULL (a tombstone, a row filtered out) but be refused.
  const unchanged = (row: (string | null | 'unchanged')[]) => {
    const msg = decodePgOutput(insertMessage(row));
    if (msg.tag !== 'insert') throw new Error('not an insert');
    return msg.values;
  };

  it('is a poison event naming the column and the event, not a tombstone nor a NULL', () => {
    const tombstones = RowMapper.compile(
      { tag: 'relation', relationId: 0x4001, schema: 'public', table: 'outbox', columns: COLUMNS.map((name) => ({ name, typeOid: name === 'payload' ? JSONB_OID : TEXT_OID, isKey: name === 'id' })) },
      { ...mapping, nullPayload: 'tombstone' },
    );
    // As the session does: the refusal of `map`, then the event `unmappable` puts in the row's place for the poison policy.
    const poison = (mapper: RowMapper, row: ReturnType<typeof unchanged>) => {
      let error: unknown;
      try {
        mapper.map(row, txn);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(RelayError);
      return mapper.unmappable(row, txn, error as RelayError);
    };
    const dead = { topic: 'outbox.order', key: 'e-1', eventId: 'e-1', headers: { [HEADER.id]: 'e-1', [HEADER.lsn]: '0/16B3748', [HEADER.xid]: '42', 'outbox-table': 'public.outbox' } };
    // The payload is what the row lacks: the dead letter carries no value rather than an empty one.
    const payload = poison(tombstones, unchanged(['e-1', 'order', 'o-1', 'OrderPlaced', 'unchanged', '{}']));
    expect(payload).toMatchObject({ ...dead, value: null, error: { code: 'RECORD_INVALID', message: expect.stringMatching(/"payload".*unchanged.*event "e-1"/) } });
    const type = poison(mapperFor(COLUMNS), unchanged(['e-1', 'order', 'o-1', 'unchanged', '{"a":1}', '{}']));
    expect(type).toMatchObject({ ...dead, value: Buffer.from('{"a":1}'), error: { code: 'RECORD_INVALID', message: expect.stringMatching(/"event_type".*unchanged.*event "e-1"/) } });
  });

  it('is not filtered out on a value it does not have: the filter lets it through to be refused', () => {
    const filtered = RowMapper.compile(
      { tag: 'relation', relationId: 0x4001, schema: 'public', table: 'outbox', columns: COLUMNS.map((name) => ({ name, typeOid: name === 'payload' ? JSONB_OID : TEXT_OID, isKey: name === 'id' })) },
      { ...mapping, filter: { includeTypes: ['Order*'] } },
    );
    expect(filtered.accepts(unchanged(['e-1', 'order', 'o-1', 'Invoice', '{}', '{}']))).toBe(false);
    expect(filtered.accepts(unchanged(['e-1', 'order', 'o-1', 'unchanged', '{}', '{}']))).toBe(true);
  });
});

describe('row mapping, a bytea payload (text format \\x…): the record carries the bytes it stands for', () => {
  const BYTEA_OID = 17;
  const byteaMapper = (tableMapping: TableMapping = mapping, columns = COLUMNS) =>
    RowMapper.compile({ tag: 'relation', relationId: 0x4001, schema: 'public', table: 'outbox', columns: columns.map((name) => ({ name, typeOid: name === 'payload' ? BYTEA_OID : TEXT_OID, isKey: name === 'id' })) }, tableMapping);
  const row = (payload: string | Buffer | null) => values(['e-1', 'order', 'o-1', 'OrderPlaced', payload, '{}']);
  const hex = (bytes: Buffer) => `\\x${bytes.toString('hex')}`;

  it('empty, one byte, an odd count, every byte value 0x00-0xff, 1 MiB: each byte as stored, as its own Buffer', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const large = Buffer.alloc(1 << 20);
    for (let i = 0; i < large.length; i++) large[i] = (i * 131 + (i >> 8)) & 0xff;
    for (const bytes of [Buffer.alloc(0), Buffer.from([0xff]), Buffer.from([0x00, 0x80, 0x7f]), all, large]) {
      const message = insertMessage(['e-1', 'order', 'o-1', 'OrderPlaced', hex(bytes), '{}']);
      const decoded = decodePgOutput(message);
      if (decoded.tag !== 'insert') throw new Error('not an insert');
      const event = byteaMapper().map(decoded.values, txn);
      expect(event.value!.equals(bytes), `${bytes.length} bytes`).toBe(true);
      expect(event.value!.length).toBe(bytes.length);
      // The client reuses its receive buffer: the value must not be a view into the message.
      message.fill(0);
      expect(event.value!.equals(bytes), `${bytes.length} bytes, message reused`).toBe(true);
    }
  });

  it('hex digits in either case, and text PostgreSQL never sends decoded as Buffer.from(hex) decodes it (odd digits, a pair that is not hex)', () => {
    for (const digits of ['DEADbeef', 'abc', '0', '41zz42', 'z1', '4', '']) {
      expect(byteaMapper().map(row(`\\x${digits}`), txn).value, digits).toEqual(Buffer.from(digits, 'hex'));
    }
  });

  it('a NULL is a poison event, or a tombstone on request; a value not in hex format is refused, and dead-lettered as stored', () => {
    expect(() => byteaMapper().map(row(null), txn)).toThrow(expect.objectContaining({ code: 'RECORD_REQUIRED_NULL' }));
    expect(byteaMapper({ ...mapping, nullPayload: 'tombstone' }).map(row(null), txn).value).toBeNull();
    for (const stored of ['\\001abc', '\\', 'x41', '']) {
      let error: unknown;
      try {
        byteaMapper().map(row(stored), txn);
      } catch (err) {
        error = err;
      }
      // Named as the mapper's other refusals name their event: by id and commit, the details keeping both.
      expect(error, stored).toMatchObject({
        code: 'RECORD_INVALID',
        message: 'the payload column\'s bytea value is not in hex format in public.outbox (event "e-1", commit LSN 0/16B3748)',
        hint: "set bytea_output = 'hex' (the default) on the server",
        details: { eventId: 'e-1', lsn: '0/16B3748', xid: 42 },
      });
      expect(byteaMapper().unmappable(row(stored), txn, error as RelayError).value, stored).toEqual(Buffer.from(stored));
    }
    expect(byteaMapper().unmappable(row(hex(Buffer.from([1, 0xfe]))), txn, new RelayError('RECORD_INVALID', 'x')).value).toEqual(Buffer.from([1, 0xfe]));
  });

  it('a row read with SQL (republish) holds its values in one buffer: a value "\\" before one that starts with "x" is not hex format', () => {
    const mapper = byteaMapper(mapping, ['id', 'aggregate_type', 'aggregate_id', 'payload', 'event_type', 'headers']);
    const fromTable = TupleValues.fromText(['e-1', 'order', 'o-1', '\\', 'x41', '{}']);
    expect(() => mapper.map(fromTable, txn)).toThrow(expect.objectContaining({ code: 'RECORD_INVALID', message: 'the payload column\'s bytea value is not in hex format in public.outbox (event "e-1", commit LSN 0/16B3748)' }));
    expect(mapper.map(TupleValues.fromText(['e-1', 'order', 'o-1', '\\x00ff', 'x41', '{}']), txn).value).toEqual(Buffer.from([0, 0xff]));
  });
});
