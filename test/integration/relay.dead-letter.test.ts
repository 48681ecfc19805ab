import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import { useDatabase } from '../support/database.js';
import { setupSlot, waitForSlotAtCurrentWal } from '../support/events.js';
import { httpArgs, metricValue, scrape } from '../support/ops-http.js';
import { commitRecordLsn, slotConfirmedLsn } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { createTopic, readTopic, uniqueName } from '../support/services.js';

describe('relay: delivery.onPoison = dead-letter', () => {
  const db = useDatabase('dlq');
  beforeAll(async () => {
    await db().query('ALTER TABLE outbox ADD COLUMN partition_key text');
  });

  const insert = async (payload: string, partitionKey: string | null) => {
    const id = randomUUID();
    await db().query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, partition_key) VALUES ($1, 'order', 'a', 'T', $2::jsonb, $3)`, [id, payload, partitionKey]);
    return id;
  };

  it('an oversized record and a row with a NULL key go to ${topic}.dlq unchanged with error headers; later events are delivered and the slot advances', async () => {
    const topic = uniqueName('small');
    await createTopic(topic, 1, undefined, [{ name: 'max.message.bytes', value: '2000' }]);
    await createTopic(`${topic}.dlq`);
    const setup = await setupSlot(db(), ['outbox']);
    const http = await httpArgs();
    const relay = startRelay([
      ...setup.args, ...http.args,
      '--topic', topic, '--mapping-key', 'partition_key',
      // 3 attempts: at least one is a retry of the record alone, whether the first went out in a batch with the
      // next event (whose refusal counts as the first attempt) or alone (CI of 8eacc81: with 2, a batch and one
      // record alone made the two, and no retry line came).
      '--delivery-on-poison', 'dead-letter', '--retry-record-max-attempts', '3', '--retry-initial-delay', '50ms',
    ]);
    await relay.waitForMessage('streaming from PostgreSQL');
    const big = JSON.stringify({ blob: 'x'.repeat(5000) });
    const good1 = await insert('{"n": 1}', 'k1');
    const tooLarge = await insert(big, 'k1');
    const nullKey = await insert('{"n": 3}', null);
    const good2 = await insert('{"n": 4}', 'k1');
    await waitForSlotAtCurrentWal(db(), setup.slot, 60_000);

    const delivered = await readTopic(topic, { expected: 2, timeoutMs: 10_000 });
    expect(delivered.map((r) => r.headers.id)).toEqual([good1, good2]);
    const dead = await readTopic(`${topic}.dlq`, { expected: 2, timeoutMs: 10_000 });
    expect(dead.map((r) => r.headers.id)).toEqual([tooLarge, nullKey]);
    const [large, unmapped] = dead as [(typeof dead)[0], (typeof dead)[0]];
    expect(large.key).toBe('k1');
    expect(large.value!.toString()).toBe(await payloadText(tooLarge));
    expect(large.headers).toMatchObject({
      type: 'T',
      'content-type': 'application/json',
      'outbox-dlq-error-code': 'RECORD_TOO_LARGE',
      'outbox-dlq-attempts': '3',
      'outbox-dlq-original-topic': topic,
    });
    expect(large.headers['outbox-dlq-error-message']).toContain(tooLarge);
    expect(large.headers['outbox-dlq-source-lsn']).toBe(large.headers['outbox-lsn']);
    expect(parseLsn(large.headers['outbox-dlq-source-lsn']!)).toBeGreaterThan(0n);
    // The row that could not be mapped: its raw id as key, its payload as value.
    expect(unmapped.key).toBe(nullKey);
    expect(unmapped.value!.toString()).toBe(await payloadText(nullKey));
    expect(unmapped.headers).toMatchObject({ 'outbox-dlq-error-code': 'RECORD_REQUIRED_NULL', 'outbox-dlq-attempts': '1', 'outbox-dlq-original-topic': topic, 'outbox-table': 'public.outbox' });

    const warned = relay.logs.filter((l) => l.msg === 'event dead-lettered: continuing');
    expect(warned.map((l) => [l.level, l.eventId])).toEqual([
      ['warn', tooLarge],
      ['warn', nullKey],
    ]);
    expect(warned.every((l) => typeof l.lsn === 'string')).toBe(true);
    expect(relay.logs.some((l) => l.msg.startsWith('Kafka rejected the record: retrying'))).toBe(true);
    const metrics = await scrape(http.base);
    expect(metricValue(metrics, 'outbox_relay_dead_lettered_total', { code: 'RECORD_TOO_LARGE' })).toBe(1);
    expect(metricValue(metrics, 'outbox_relay_dead_lettered_total', { code: 'RECORD_REQUIRED_NULL' })).toBe(1);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it.each(['rdkafka', 'kafkajs'])('at-most-once, --kafka-client %s: an event for a topic that does not exist is dead-lettered before its transaction is handed off; its neighbours in the transaction are delivered, none dropped', async (client) => {
    // Before: the hand-off confirmed the transaction's batch, Kafka refused it for the topic, and all three events
    // were dropped, past the policy.
    const topic = uniqueName('amo');
    const dlq = uniqueName('dlq');
    await createTopic(`${topic}.k`);
    await createTopic(dlq);
    const setup = await setupSlot(db(), ['outbox']);
    const http = await httpArgs();
    const relay = startRelay([
      ...setup.args, ...http.args,
      '--kafka-client', client, '--delivery-guarantee', 'at-most-once', '--topic', `${topic}.\${partition_key}`,
      '--delivery-on-poison', 'dead-letter', '--delivery-dead-letter-topic', dlq, '--retry-record-max-attempts', '2', '--retry-initial-delay', '50ms',
    ]);
    await relay.waitForMessage('streaming from PostgreSQL');
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    await db().query(
      `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, partition_key) SELECT u.id, 'order', 'a', 'T', '{}'::jsonb, u.k FROM unnest($1::uuid[], $2::text[]) AS u(id, k)`,
      [ids, ['k', 'nowhere', 'k']],
    );
    const delivered = await readTopic(`${topic}.k`, { expected: 2, timeoutMs: 30_000 });
    expect(delivered.map((r) => r.headers.id)).toEqual([ids[0], ids[2]]);
    const dead = await readTopic(dlq, { expected: 1, timeoutMs: 10_000 });
    expect(dead.map((r) => r.headers.id)).toEqual([ids[1]]);
    expect(dead[0]!.headers).toMatchObject({ 'outbox-dlq-error-code': 'TOPIC_NOT_FOUND', 'outbox-dlq-attempts': '2', 'outbox-dlq-original-topic': `${topic}.nowhere` });
    await waitForSlotAtCurrentWal(db(), setup.slot, 30_000);
    const metrics = await scrape(http.base);
    expect(metricValue(metrics, 'outbox_relay_events_dropped_total')).toBe(0);
    expect(metricValue(metrics, 'outbox_relay_dead_lettered_total', { code: 'TOPIC_NOT_FOUND' })).toBe(1);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('a dead letter that cannot be written halts on that event without confirming it', async () => {
    const topic = uniqueName('small');
    await createTopic(topic, 1, undefined, [{ name: 'max.message.bytes', value: '2000' }]);
    const setup = await setupSlot(db(), ['outbox']);
    const relay = startRelay([
      ...setup.args,
      '--topic', topic, '--delivery-on-poison', 'dead-letter', '--delivery-dead-letter-topic', uniqueName('missing'),
      '--retry-record-max-attempts', '1',
    ]);
    await relay.waitForMessage('streaming from PostgreSQL');
    await insert('{}', 'k');
    await waitForSlotAtCurrentWal(db(), setup.slot);
    const confirmedBefore = await slotConfirmedLsn(db(), setup.slot);
    const poison = await insert(JSON.stringify({ blob: 'x'.repeat(5000) }), 'k');
    // The halt names what to mend (the dead-letter topic is missing) and the event it stopped at.
    const halt = await relay.waitForLog((l) => l.level === 'error' && l.code === 'TOPIC_NOT_FOUND', 30_000, 'the halt');
    expect(halt.eventId).toBe(poison);
    expect(halt.poisonCode).toBe('RECORD_TOO_LARGE');
    expect(String(halt.fix)).toMatch(/^create it/);
    // Never at or past the poison's commit; and nothing moves after the halt.
    const confirmedAtHalt = await slotConfirmedLsn(db(), setup.slot);
    // The poison's commit record from the WAL: the halt names it, and the slot stays at or before it.
    const { rows } = await db().query<{ xid: string }>('SELECT xmin::text AS xid FROM outbox WHERE id = $1', [poison]);
    const poisonCommit = await commitRecordLsn(db(), rows[0]!.xid, confirmedBefore);
    expect(parseLsn(String(halt.lsn))).toBe(poisonCommit);
    expect(confirmedAtHalt).toBeGreaterThanOrEqual(confirmedBefore);
    expect(confirmedAtHalt).toBeLessThanOrEqual(poisonCommit);
    await insert('{}', 'k');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await slotConfirmedLsn(db(), setup.slot)).toBe(confirmedAtHalt);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(1);
    // Exit 1 with one error line: the halt's.
    expect(relay.logs.filter((l) => l.level === 'error').map((l) => l.msg)).toEqual([
      `halted: event "${poison}" (commit LSN ${String(halt.lsn)}) was not delivered; nothing after the confirmed position was confirmed; fix the cause and restart`,
    ]);
  });

  async function payloadText(id: string): Promise<string> {
    const { rows } = await db().query<{ p: string }>('SELECT payload::text AS p FROM outbox WHERE id = $1', [id]);
    return rows[0]!.p;
  }
});
