import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, createTopic, kafkaClient, readTopic, uniqueName, type TestDatabase } from '../support/services.js';

describe('the test stack runs real services', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDatabase('smoke');
  });
  afterAll(async () => {
    await db.close();
  });

  it('streams an outbox INSERT as a pgoutput Insert message through the publication', async () => {
    const slot = uniqueName('slot');
    await db.query(`CREATE PUBLICATION ${slot}_pub FOR TABLE outbox WITH (publish = 'insert')`);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    const id = randomUUID();
    await db.query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES ($1, 'order', '42', 'OrderPlaced', '{"total": 10}')`, [id]);
    const { rows } = await db.query<{ data: Buffer }>(
      `SELECT data FROM pg_logical_slot_get_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)`,
      [slot, `${slot}_pub`],
    );
    const tags = rows.map((r) => String.fromCharCode(r.data[0]!));
    expect(tags).toEqual(['B', 'R', 'I', 'C']);
    const insert = rows[2]!.data.toString('latin1');
    expect(insert).toContain(id);
    expect(insert).toContain('{"total": 10}');
    await db.query('SELECT pg_drop_replication_slot($1)', [slot]);
  });

  it('produces a record with key and headers that a consumer reads back from the broker', async () => {
    const topic = uniqueName('smoke');
    await createTopic(topic);
    const producer = kafkaClient().producer({ idempotent: true });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ key: 'k1', value: 'hello', headers: { id: 'e1', type: 'Smoke' } }] });
    await producer.disconnect();
    const records = await readTopic(topic, { expected: 1, settleMs: 0 });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ key: 'k1', headers: { id: 'e1', type: 'Smoke' } });
    expect(records[0]!.value?.toString()).toBe('hello');
  });
});
