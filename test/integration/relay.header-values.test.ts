import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useDatabase } from '../support/database.js';
import { setupSlot } from '../support/events.js';
import { startRelay } from '../support/relay-process.js';
import { createDatabase, createTopic, readTopic, uniqueName } from '../support/services.js';

const HEADERS = '{"num": 12345678901234567890, "dec": 1.50, "exp": 1E+2, "s": "a \\"quoted\\" text", "o": {"b": 1,  "a": [1.0]}, "gone": null}';

describe('relay: user header values are the stored JSON text', () => {
  const db = useDatabase('hdrvalues');

  it('json and text columns: exactly as inserted (strings unquoted, no number round trip); jsonb: PostgreSQL’s normalised text', async () => {
    const topics = { json: uniqueName('hjson'), text: uniqueName('htext'), jsonb: uniqueName('hjsonb') };
    for (const t of Object.values(topics)) await createTopic(t);
    for (const type of ['json', 'text'] as const) {
      await db().query(`CREATE TABLE outbox_${type} (LIKE outbox INCLUDING ALL)`);
      await db().query(`ALTER TABLE outbox_${type} ALTER COLUMN headers DROP DEFAULT, ALTER COLUMN headers TYPE ${type} USING headers::text::${type}`);
    }
    const setup = await setupSlot(db(), ['outbox', 'outbox_json', 'outbox_text']);
    const tables = [
      { table: 'public.outbox', topic: topics.jsonb },
      { table: 'public.outbox_json', topic: topics.json },
      { table: 'public.outbox_text', topic: topics.text },
    ];
    const relay = startRelay([...setup.args, '--tables', JSON.stringify(tables)]);
    await relay.waitForMessage('streaming from PostgreSQL');
    for (const table of ['outbox', 'outbox_json', 'outbox_text']) {
      await db().query(`INSERT INTO ${table} (id, aggregate_type, aggregate_id, event_type, payload, headers) VALUES ($1, 'order', 'o-1', 'T', '{}', $2)`, [randomUUID(), HEADERS]);
    }
    const [jsonb, json, text] = await Promise.all([topics.jsonb, topics.json, topics.text].map((t) => readTopic(t, { expected: 1 })));
    for (const records of [json, text]) {
      expect(records).toHaveLength(1);
      const h = records![0]!.headers;
      expect([h.num, h.dec, h.exp, h.s, h.o, h.gone]).toEqual(['12345678901234567890', '1.50', '1E+2', 'a "quoted" text', '{"b": 1,  "a": [1.0]}', undefined]);
    }
    // jsonb keeps the digits of numbers (numeric) but rewrites their notation, key order and whitespace.
    const h = jsonb![0]!.headers;
    expect([h.num, h.dec, h.exp, h.s, h.o, h.gone]).toEqual(['12345678901234567890', '1.50', '100', 'a "quoted" text', '{"a": [1.0], "b": 1}', undefined]);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });
});

describe("relay: the text pgoutput writes does not depend on the database's or role's settings", () => {
  it('a LATIN1 database with DateStyle SQL, DMY and another TimeZone, and a URL with its own options: headers in UTF-8, the mapped timestamp read right, the URL\'s setting applied too', async () => {
    const db = await createDatabase('latin1', undefined, "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
    try {
      await db.query(`ALTER DATABASE ${db.name} SET DateStyle = 'SQL, DMY'`);
      await db.query(`ALTER DATABASE ${db.name} SET TimeZone = 'Europe/Amsterdam'`);
      const topic = uniqueName('latin1');
      await createTopic(topic);
      const setup = await setupSlot(db, ['outbox']);
      // The operations guide's URL for a faster takeover: pg let its options replace the relay's text settings.
      const url = new URL(db.url);
      url.searchParams.set('options', '-c wal_sender_timeout=5s');
      const args = setup.args.map((arg) => (arg === db.url ? url.toString() : arg));
      const relay = startRelay([...args, '--topic', topic, '--mapping-timestamp', 'created_at', '--status-interval', '10s']);
      await relay.waitForMessage('streaming from PostgreSQL');
      // The URL's setting reached the walsender as well (the server's own is 60 s): the relay reads it back and
      // reports its position every 2.5 s instead of 10 s.
      expect(relay.logs.filter((l) => /wal_sender_timeout/.test(String(l.msg))).map((l) => [l.walSenderTimeoutMs, l.reportEveryMs])).toEqual([[5000, 2500]]);
      const id = randomUUID();
      await db.query(
        `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, created_at) VALUES ($1, 'bestellung', 'Müller', 'Bestellung_geändert', '{"straße": "Königsallee"}', '2026-01-02 03:04:05+00')`,
        [id],
      );
      const [record] = await readTopic(topic, { expected: 1 });
      // Before: the walsender wrote in the database's encoding, 'ä' arrived as one byte and became U+FFFD; and
      // "02/01/2026 04:04:05 CET" (SQL, DMY) made the event a RECORD_INVALID poison (a halt).
      expect(record?.headers, relay.dump()).toMatchObject({ id, type: 'Bestellung_geändert', 'aggregate-id': 'Müller' });
      expect(JSON.parse(record!.value!.toString())).toEqual({ straße: 'Königsallee' });
      expect(record!.timestamp).toBe(Date.parse('2026-01-02T03:04:05Z'));
      relay.signal('SIGTERM');
      expect(await relay.exited).toBe(0);
    } finally {
      await db.close();
    }
  });
});

describe('relay: a SQL_ASCII database stores text bytes unchecked', () => {
  it('a UTF-8 row is relayed as written; a row whose aggregate_id is LATIN1 bytes halts naming the event and the column, not sent as U+FFFD', async () => {
    const db = await createDatabase('sqlascii', undefined, "ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
    try {
      const topic = uniqueName('sqlascii');
      await createTopic(topic);
      const setup = await setupSlot(db, ['outbox']);
      const relay = startRelay([...setup.args, '--topic', topic]);
      await relay.waitForMessage('streaming from PostgreSQL');
      const good = randomUUID();
      const bad = randomUUID();
      await db.query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES ($1, 'order', 'Müller', 'T', '{}')`, [good]);
      // 'Mäller' in LATIN1: a SQL_ASCII database takes the bytes as they come (convert_from checks only for NUL).
      await db.query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES ($1, 'order', convert_from('\\x4de46c6c6572'::bytea, 'SQL_ASCII'), 'T', '{}')`, [bad]);
      const halted = await relay.waitForLog((l) => l.level === 'error' && String(l.msg).startsWith('halted'), 30_000, 'the halt');
      expect(halted, relay.dump()).toMatchObject({ code: 'RECORD_INVALID', eventId: bad, column: 'aggregate_id' });
      expect(String(halted.err)).toContain('column "aggregate_id" is not UTF-8');
      const records = await readTopic(topic, { expected: 1 });
      expect(records.map((r) => [r.headers.id, r.headers['aggregate-id']])).toEqual([[good, 'Müller']]);
      relay.signal('SIGTERM');
      expect(await relay.exited).toBe(1);
    } finally {
      await db.close();
    }
  });
});
