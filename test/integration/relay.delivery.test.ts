import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import { compareDelivery, currentWalLsn, insertEvents, setupOutbox, slotConfirmedLsn } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic } from '../support/services.js';
import { useDatabase } from '../support/database.js';
import { waitUntil } from '../../stack/index.js';

describe('relay: outbox INSERTs to Kafka', () => {
  const db = useDatabase('delivery');

  it('forwards the payload bytes as stored, the id as key, and the row headers plus the source position', async () => {
    const setup = await setupOutbox(db());
    const id = randomUUID();
    const payload = '{"name": "Zoë ✓", "nested": {"a": [1, 2.50, null]}, "text": "line\\nbreak"}';
    await db().query(
      `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, headers) VALUES ($1, 'order', 'o-1', 'OrderPlaced', $2::jsonb, '{"traceparent": "00-abc-01", "attempt": 3, "skip": null}')`,
      [id, payload],
    );
    const { rows } = await db().query<{ payload: string; xid: string }>(`SELECT payload::text AS payload, xmin::text AS xid FROM outbox WHERE id = $1`, [id]);
    const relay = startRelay(setup.args);
    const records = await readTopic(setup.topic, { expected: 1 });
    expect(records).toHaveLength(1);
    const record = records[0]!;
    expect(record.key).toBe(id);
    expect(record.value!.equals(Buffer.from(rows[0]!.payload, 'utf8'))).toBe(true);
    expect(record.headers).toMatchObject({
      id,
      type: 'OrderPlaced',
      'aggregate-type': 'order',
      'aggregate-id': 'o-1',
      traceparent: '00-abc-01',
      attempt: '3',
      'outbox-xid': rows[0]!.xid,
    });
    expect(record.headers).not.toHaveProperty('skip');
    expect(parseLsn(record.headers['outbox-lsn']!)).toBeGreaterThan(0n);
    expect(Number.isNaN(Date.parse(record.headers['outbox-commit-time']!))).toBe(false);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('stamps records with the event-time column when mapping.timestamp names one, else with the send time', async () => {
    const eventTime = '2024-05-01 10:11:12.345+00';
    const insert = async (id: string) =>
      db().query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, created_at) VALUES ($1, 'order', 'o', 'T', '{}', $2)`, [id, eventTime]);
    const stamped = await setupOutbox(db(), { extraArgs: ['--mapping-timestamp', 'created_at'] });
    const plain = await setupOutbox(db());
    const id = randomUUID();
    const before = Date.now();
    await insert(id);
    const relays = [startRelay(stamped.args), startRelay(plain.args)];
    const [withEventTime] = await readTopic(stamped.topic, { expected: 1, settleMs: 0 });
    const [withSendTime] = await readTopic(plain.topic, { expected: 1, settleMs: 0 });
    expect(withEventTime!.key).toBe(id);
    expect(withEventTime!.timestamp).toBe(Date.parse('2024-05-01T10:11:12.345Z'));
    expect(withSendTime!.timestamp).toBeGreaterThanOrEqual(before);
    for (const relay of relays) relay.signal('SIGTERM');
    expect(await Promise.all(relays.map((r) => r.exited))).toEqual([0, 0]);
  });

  it('delivers every event of concurrent writers with interleaved commits, in commit order per partition, and confirms the slot', async () => {
    const setup = await setupOutbox(db(), { partitions: 4, extraArgs: ['--mapping-key', 'aggregate_id'] });
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    const writers = 8;
    const txnsPerWriter = 40;
    const committed: string[] = [];
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let t = 0; t < txnsPerWriter; t++) {
          const rows = await insertEvents(db(), 1 + (t % 5), { aggregateId: `writer-${w}`, payload: (i) => JSON.stringify({ w, seq: t * 10 + i }) });
          committed.push(...rows.map((r) => r.id));
        }
      }),
    );
    const lsnAfterCommits = await currentWalLsn(db());
    const records = await readTopic(setup.topic, { expected: committed.length });
    const delivery = compareDelivery(committed, records.map((r) => r.headers.id ?? null));
    console.log(`concurrent writers: ${committed.length} committed, ${records.length} delivered, ${delivery.duplicates} duplicates`);
    expect(delivery.missing).toEqual([]);
    expect(delivery.unexpected).toBe(0);
    // Each writer commits serially under its own key, so its sequence must arrive increasing in its partition.
    const lastSeq = new Map<string, number>();
    for (const r of records) {
      const { w, seq } = JSON.parse(r.value!.toString()) as { w: number; seq: number };
      const previous = lastSeq.get(`${w}`) ?? -1;
      expect(seq, `writer ${w} out of order`).toBeGreaterThan(previous);
      lastSeq.set(`${w}`, seq);
    }
    for (const partition of new Set(records.map((r) => r.partition))) {
      const lsns = records.filter((r) => r.partition === partition).map((r) => parseLsn(r.headers['outbox-lsn']!));
      expect(lsns).toEqual([...lsns].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    await waitUntil('slot confirmed past the last commit', async () => (await slotConfirmedLsn(db(), setup.slot)) >= lsnAfterCommits, 20_000);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });
});
