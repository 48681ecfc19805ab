import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { useDatabase } from '../support/database.js';
import { setupSlot, waitForSlotAtCurrentWal } from '../support/events.js';
import { startRelay } from '../support/relay-process.js';
import { createTopic, readTopic, uniqueName } from '../support/services.js';

describe('relay: several outbox tables, payload types and the CloudEvents envelope', () => {
  const db = useDatabase('tables');

  it('two tables in one publication, each with its own mapping, routing and filter; jsonb as text, bytea as bytes; CloudEvents binary headers', async () => {
    await db().query(`CREATE SCHEMA billing`);
    await db().query(
      `CREATE TABLE billing.events (event_id uuid PRIMARY KEY, kind text NOT NULL, invoice text NOT NULL, body bytea NOT NULL, occurred_at timestamptz NOT NULL)`,
    );
    const [orders, invoices, credits] = [uniqueName('orders'), uniqueName('invoices'), uniqueName('credits')];
    for (const t of [orders, invoices, credits]) await createTopic(t);
    const setup = await setupSlot(db(), ['public.outbox', 'billing.events']);
    const configFile = join(tmpdir(), `${uniqueName('relay')}.yaml`);
    writeFileSync(
      configFile,
      YAML.stringify({
        envelope: { mode: 'cloudevents', source: '/shop' },
        tables: [
          { table: 'public.outbox', topic: orders, mapping: { key: 'aggregate_id', timestamp: 'created_at' } },
          {
            table: 'billing.events',
            mapping: { id: 'event_id', key: 'invoice', type: 'kind', aggregateType: '', aggregateId: 'invoice', payload: 'body', headers: '', timestamp: 'occurred_at' },
            topic: invoices,
            routes: [{ type: 'Credit*', topic: credits }],
            filter: { excludeTypes: ['*Draft'] },
          },
        ],
      }),
    );
    const relay = startRelay([...setup.args, '--config', configFile]);
    await relay.waitForMessage('streaming from PostgreSQL');

    const orderId = randomUUID();
    const [invoiceId, creditId, draftId] = [randomUUID(), randomUUID(), randomUUID()];
    const invoiceBody = randomBytes(64); // not UTF-8: must arrive byte for byte
    const creditBody = Buffer.from([0x00, 0xff, 0x0a, 0x5c]);
    // One transaction over both tables.
    await db().query('BEGIN');
    await db().query(`INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, created_at) VALUES ($1, 'order', 'o-9', 'OrderPlaced', '{"sku": "A-1"}', '2024-05-01 10:11:12.345+02')`, [orderId]);
    await db().query(
      `INSERT INTO billing.events VALUES ($1, 'InvoiceIssued', 'inv-1', $4, '2024-06-01 00:00:00+00'), ($2, 'CreditNoteIssued', 'inv-1', $5, '2024-06-02 00:00:00+00'), ($3, 'InvoiceDraft', 'inv-2', '\\x00', now())`,
      [invoiceId, creditId, draftId, invoiceBody, creditBody],
    );
    await db().query('COMMIT');
    await waitForSlotAtCurrentWal(db(), setup.slot);

    const [o, i, c] = await Promise.all([orders, invoices, credits].map((t) => readTopic(t, { expected: 1, timeoutMs: 10_000 })));
    expect(o).toHaveLength(1);
    expect(o![0]!.key).toBe('o-9');
    expect(o![0]!.value!.toString()).toBe('{"sku": "A-1"}');
    expect(o![0]!.headers).toMatchObject({
      'content-type': 'application/json',
      ce_specversion: '1.0',
      ce_id: orderId,
      ce_type: 'OrderPlaced',
      ce_source: '/shop',
      ce_subject: 'o-9',
      ce_time: '2024-05-01T08:11:12.345Z',
    });
    expect(i!.map((r) => [r.key, r.headers.id, r.headers['content-type'], r.headers.ce_type, r.headers.ce_time])).toEqual([
      ['inv-1', invoiceId, 'application/octet-stream', 'InvoiceIssued', '2024-06-01T00:00:00.000Z'],
    ]);
    expect(i![0]!.value!.equals(invoiceBody)).toBe(true);
    expect(c!.map((r) => [r.headers.id, r.headers.ce_type])).toEqual([[creditId, 'CreditNoteIssued']]);
    expect(c![0]!.value!.equals(creditBody)).toBe(true);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('a bad tables entry stops the relay before it connects, naming the key and the file', async () => {
    const configFile = join(tmpdir(), `${uniqueName('bad')}.yaml`);
    writeFileSync(configFile, YAML.stringify({ kafka: { brokers: ['127.0.0.1:1'] }, tables: [{ table: 'public.outbox' }, { table: 'public.other', mapping: { payload: 'not a column!' } }] }));
    const relay = startRelay(['run', '--postgres-url', db().url, '--config', configFile]);
    expect(await relay.exited).toBe(2);
    const text = relay.dump();
    expect(text).toContain('tables');
    expect(text).toContain('1.mapping.payload');
    expect(text).toContain(configFile);
  });
});
