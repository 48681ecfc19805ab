import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../stack/index.js';
import { useDatabase } from '../support/database.js';
import { setupSlot, waitForSlotAtCurrentWal } from '../support/events.js';
import { httpArgs, metricValue, scrape } from '../support/ops-http.js';
import { startRelay } from '../support/relay-process.js';
import { createTopic, readTopic, uniqueName } from '../support/services.js';

describe('relay: events from pg_logical_emit_message (sql/004_emit_event.sql)', () => {
  const db = useDatabase('messages');
  beforeAll(async () => {
    await db().query(readFileSync(join(repoRoot, 'sql/004_emit_event.sql'), 'utf8'));
  });

  it('relays committed transactional messages in order with the outbox rows of their transaction; rolled-back and non-transactional ones produce nothing; the slot advances', async () => {
    const topic = uniqueName('msgs');
    const other = uniqueName('explicit');
    for (const t of [topic, other]) await createTopic(t);
    const setup = await setupSlot(db(), ['outbox']);
    const http = await httpArgs();
    const relay = startRelay([...setup.args, ...http.args, '--topic', topic, '--messages-prefixes', 'outbox', '--messages-topic', topic]);
    await relay.waitForMessage('streaming from PostgreSQL');

    const [first, row, second, rolledBack, explicit] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await db().query('BEGIN');
    await db().query(`SELECT outbox_emit('OrderPlaced', '{"n": 1}', 'order', 'o-1', id => $1, headers => '{"traceparent": "00-ab-01"}')`, [first]);
    await db().query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES ($1, 'order', 'o-1', 'RowEvent', '{}')`, [row]);
    await db().query(`SELECT outbox_emit_bytes('Blob', '\\x00ff0a'::bytea, key => 'k-2', id => $1)`, [second]);
    await db().query('COMMIT');
    await db().query('BEGIN');
    await db().query(`SELECT outbox_emit('Never', '{}', id => $1)`, [rolledBack]);
    await db().query('ROLLBACK');
    await db().query(`SELECT pg_logical_emit_message(false, 'outbox', 'not transactional')`);
    await db().query(`SELECT pg_logical_emit_message(false, 'outbox', 'not transactional either')`);
    await db().query(`SELECT outbox_emit('Routed', '{"n": 3}', topic => $1, id => $2)`, [other, explicit]);
    // Fails (times out) unless the slot's confirmed position gets to the WAL end written after the messages.
    await waitForSlotAtCurrentWal(db(), setup.slot);

    const records = await readTopic(topic, { expected: 3, timeoutMs: 10_000 });
    expect(records.map((r) => [r.headers.id, r.key])).toEqual([
      [first, 'o-1'],
      [row, row],
      [second, 'k-2'],
    ]);
    expect(records[0]!.value!.toString()).toBe('{"n": 1}');
    expect(records[0]!.headers).toMatchObject({ type: 'OrderPlaced', 'aggregate-type': 'order', 'aggregate-id': 'o-1', traceparent: '00-ab-01', 'content-type': 'application/json' });
    expect(records[2]!.value!.equals(Buffer.from([0x00, 0xff, 0x0a]))).toBe(true);
    expect(records[2]!.headers['content-type']).toBe('application/octet-stream');
    // The message and the row of one transaction carry the same source position.
    expect(records[0]!.headers['outbox-lsn']).toBe(records[1]!.headers['outbox-lsn']);
    const routed = await readTopic(other, { expected: 1, timeoutMs: 10_000 });
    expect(routed.map((r) => r.headers.id)).toEqual([explicit]);
    // Each counted, the line once per prefix (an application emitting every event this way would flood the log).
    expect(relay.logs.filter((l) => l.msg.startsWith('non-transactional logical message not relayed')).map((l) => l.prefix)).toEqual(['outbox']);
    expect(metricValue(await scrape(http.base), 'outbox_relay_messages_not_relayed_total', { prefix: 'outbox' })).toBe(2);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('messages are not relayed unless messages.prefixes is set', async () => {
    const topic = uniqueName('nomsgs');
    await createTopic(topic);
    const setup = await setupSlot(db(), ['outbox']);
    const relay = startRelay([...setup.args, '--topic', topic]);
    await relay.waitForMessage('streaming from PostgreSQL');
    await db().query(`SELECT outbox_emit('Ignored', '{}')`);
    await db().query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES (gen_random_uuid(), 'order', 'o-1', 'RowEvent', '{}')`);
    await waitForSlotAtCurrentWal(db(), setup.slot);
    const records = await readTopic(topic, { expected: 2, timeoutMs: 5000 });
    expect(records.map((r) => r.headers.type)).toEqual(['RowEvent']);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });
});
