import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useDatabase } from '../support/database.js';
import { setupSlot, waitForSlotAtCurrentWal } from '../support/events.js';
import { startRelay } from '../support/relay-process.js';
import { createTopic, readTopic, uniqueName } from '../support/services.js';
import { httpArgs, metricValue, scrape } from '../support/ops-http.js';

describe('relay: mapping, routing and filters', () => {
  const db = useDatabase('mapping');

  it('debezium preset: Debezium EventRouter schema as is, topic outbox.event.<aggregatetype>, key = aggregate id, event id in the id header', async () => {
    await db().query(`CREATE TABLE dbz_outbox (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb)`);
    const aggregateType = uniqueName('order');
    const topic = `outbox.event.${aggregateType}`;
    await createTopic(topic);
    const setup = await setupSlot(db(), ['dbz_outbox']);
    const relay = startRelay([...setup.args, '--preset', 'debezium', '--table', 'dbz_outbox']);
    const ids = [randomUUID(), randomUUID()];
    await db().query(
      `INSERT INTO dbz_outbox (id, aggregatetype, aggregateid, type, payload) VALUES ($1, $3, 'o-1', 'OrderCreated', '{"total": 10}'), ($2, $3, 'o-2', 'OrderShipped', '{"total": 20}')`,
      [...ids, aggregateType],
    );
    const records = await readTopic(topic, { expected: 2 });
    expect(records.map((r) => [r.key, r.headers.id, r.headers.type, r.headers['content-type'], r.value!.toString()])).toEqual([
      ['o-1', ids[0], 'OrderCreated', 'application/json', '{"total": 10}'],
      ['o-2', ids[1], 'OrderShipped', 'application/json', '{"total": 20}'],
    ]);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('trace context: traceparent/tracestate columns, and Debezium’s tracingspancontext, reach Kafka as W3C headers', async () => {
    const traceparent = (n: number) => `00-${String(n).repeat(32)}-${String(n).repeat(16)}-01`;
    const topic = uniqueName('traced');
    await createTopic(topic);
    await db().query(`CREATE TABLE traced_outbox (id uuid PRIMARY KEY, aggregate_type text NOT NULL, aggregate_id text NOT NULL, event_type text NOT NULL, payload jsonb NOT NULL, headers jsonb NOT NULL DEFAULT '{}', traceparent text, tracestate text)`);
    const aggregateType = uniqueName('order');
    const dbzTopic = `outbox.event.${aggregateType}`;
    await createTopic(dbzTopic);
    await db().query(`CREATE TABLE dbz_traced (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb, tracingspancontext varchar(256))`);
    const relay = startRelay([...(await setupSlot(db(), ['traced_outbox'])).args, '--topic', topic, '--table', 'traced_outbox']);
    const dbz = startRelay([...(await setupSlot(db(), ['dbz_traced'])).args, '--preset', 'debezium', '--table', 'dbz_traced']);

    const ids = [randomUUID(), randomUUID(), randomUUID()];
    await db().query(
      `INSERT INTO traced_outbox (id, aggregate_type, aggregate_id, event_type, payload, headers, traceparent, tracestate) VALUES
         ($1, 'order', 'o-1', 'OrderPlaced', '{}', '{"traceparent": "from-headers-column"}', $4, 'vendor=abc'),
         ($2, 'order', 'o-2', 'OrderPlaced', '{}', '{}', $5, NULL),
         ($3, 'order', 'o-3', 'OrderPlaced', '{}', '{}', NULL, NULL)`,
      [...ids, traceparent(1), traceparent(2)],
    );
    const records = await readTopic(topic, { expected: 3 });
    expect(records.map((r) => [r.key, r.headers.traceparent, r.headers.tracestate])).toEqual([
      [ids[0], traceparent(1), 'vendor=abc'],
      [ids[1], traceparent(2), undefined],
      [ids[2], undefined, undefined],
    ]);

    // Debezium's ActivateTracingSpan writes java.util.Properties text; its EventRouter emits `traceparent`.
    const dbzIds = [randomUUID(), randomUUID()];
    await db().query(
      `INSERT INTO dbz_traced (id, aggregatetype, aggregateid, type, payload, tracingspancontext) VALUES
         ($1, $3, 'o-1', 'OrderCreated', '{}', $4), ($2, $3, 'o-2', 'OrderCreated', '{}', NULL)`,
      [...dbzIds, aggregateType, `#Mon Nov 30 05:40:00 UTC 2026\ntraceparent=${traceparent(3)}\ntracestate=rojo=00f067aa0ba902b7\n`],
    );
    const dbzRecords = await readTopic(dbzTopic, { expected: 2 });
    expect(dbzRecords.map((r) => [r.headers.id, r.headers.traceparent, r.headers.tracestate])).toEqual([
      [dbzIds[0], traceparent(3), 'rojo=00f067aa0ba902b7'],
      [dbzIds[1], undefined, undefined],
    ]);
    for (const r of [relay, dbz]) r.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
    expect(await dbz.exited).toBe(0);
  });

  it('routes by event type (first match wins, else the template), keys by aggregate id, filters by type and aggregate type, and confirms filtered-only transactions', async () => {
    const prefix = uniqueName('r');
    const [payments, refunds, fallback] = [`${prefix}.payments`, `${prefix}.refunds`, `${prefix}.order`];
    for (const t of [payments, refunds, fallback]) await createTopic(t);
    const setup = await setupSlot(db(), ['outbox']);
    const relay = startRelay([
      ...setup.args,
      '--topic', `${prefix}.\${aggregate_type}`,
      '--routes', `PaymentRefunded=${refunds},Payment*=${payments}`,
      '--mapping-key', 'aggregate_id',
      '--filter-exclude-types', '*Internal',
      '--filter-include-aggregate-types', 'order,payment',
    ]);
    await relay.waitForMessage('streaming from PostgreSQL');
    const insert = (rows: [string, string, string][]) =>
      db().query(
        `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) SELECT gen_random_uuid(), a, k, t, '{}'::jsonb FROM unnest($1::text[], $2::text[], $3::text[]) AS u(a, k, t)`,
        [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])],
      );
    await insert([
      ['order', 'o-1', 'OrderPlaced'],
      ['payment', 'p-1', 'PaymentReceived'],
      ['payment', 'p-1', 'PaymentRefunded'],
      ['order', 'o-1', 'OrderAuditInternal'],
      ['audit', 'x-1', 'OrderPlaced'],
    ]);
    // A transaction whose every event is filtered out must still move the slot: the wait fails (times out) unless
    // the slot's confirmed position gets to the WAL end written after it.
    await insert([
      ['order', 'o-2', 'OrderInternal'],
      ['audit', 'x-2', 'Anything'],
    ]);
    await waitForSlotAtCurrentWal(db(), setup.slot);
    const [orders, pays, refs] = await Promise.all([fallback, payments, refunds].map((t) => readTopic(t, { expected: 1, timeoutMs: 10_000 })));
    expect(orders!.map((r) => [r.key, r.headers.type])).toEqual([['o-1', 'OrderPlaced']]);
    expect(pays!.map((r) => [r.key, r.headers.type])).toEqual([['p-1', 'PaymentReceived']]);
    expect(refs!.map((r) => [r.key, r.headers.type])).toEqual([['p-1', 'PaymentRefunded']]);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('include filter by event type: only matching events reach Kafka, and the rows left out are counted per table', async () => {
    const topic = uniqueName('only');
    await createTopic(topic);
    const setup = await setupSlot(db(), ['outbox']);
    const http = await httpArgs();
    const relay = startRelay([...setup.args, ...http.args, '--topic', topic, '--filter-include-types', 'Order*', '--filter-exclude-aggregate-types', 'audit']);
    await relay.waitForMessage('streaming from PostgreSQL');
    await db().query(
      `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload) VALUES
         (gen_random_uuid(), 'order', 'o-1', 'OrderPlaced', '{}'), (gen_random_uuid(), 'order', 'o-1', 'InvoiceSent', '{}'), (gen_random_uuid(), 'audit', 'o-1', 'OrderPlaced', '{}')`,
    );
    await waitForSlotAtCurrentWal(db(), setup.slot);
    const records = await readTopic(topic, { expected: 2, timeoutMs: 5000 });
    expect(records.map((r) => [r.headers.type, r.headers['aggregate-type']])).toEqual([['OrderPlaced', 'order']]);
    expect(metricValue(await scrape(http.base), 'outbox_relay_filtered_total', { table: 'public.outbox' })).toBe(2);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });
});
