import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import { RelayError } from '../../src/errors.js';
import type { RelayConfig } from '../../src/config/types.js';
import { republish, type RepublishOptions } from '../../src/ops/republish.js';
import type { Sink, SinkRecord } from '../../src/sink/sink.js';
import { FakeOutbox, type OutboxRow } from '../support/fakes/fake-outbox.js';

const base = loadConfig({ env: {}, flags: { 'postgres.url': 'postgres://u@h/db', 'kafka.brokers': 'k:9092' }, required: [] });

function config(overrides: { deliveryTimeoutMs?: number; maxDurationMs?: number } = {}): RelayConfig {
  return {
    ...base,
    kafka: { ...base.kafka, deliveryTimeoutMs: overrides.deliveryTimeoutMs ?? base.kafka.deliveryTimeoutMs },
    retry: { ...base.retry, initialDelayMs: 1, maxDelayMs: 2, maxDurationMs: overrides.maxDurationMs ?? base.retry.maxDurationMs },
  };
}

function row(id: string, createdAt: string | null): OutboxRow {
  return { id, aggregate_type: 'order', aggregate_id: 'o-1', event_type: 'OrderPlaced', payload: '{}', headers: '{}', created_at: createdAt };
}

/** A sink that records what Kafka acknowledged; `hang` sends are never answered (a silent broker under librdkafka). */
function sink(mode: 'ok' | 'hang' = 'ok'): Sink & { written: string[] } {
  const written: string[] = [];
  return {
    written,
    connect: async () => undefined,
    send: (records: readonly SinkRecord[]) => (mode === 'hang' ? new Promise<void>(() => undefined) : Promise.resolve(void written.push(...records.map((r) => r.key as string)))),
    close: async () => undefined,
  };
}

function options(selection: RepublishOptions['selection'], target: Sink, batchSize = 2): RepublishOptions {
  return { selection, timeColumn: undefined, batchSize, rate: 1_000_000, sink: target, signal: new AbortController().signal, progress: () => ({ update() {}, finish() {} }) };
}

const logger = pino({ level: 'silent' });

describe('republish --ids', () => {
  it('never writes to the checkpoint topic (row data names topics): refused as the relay refuses it, nothing sent', async () => {
    const target = sink();
    const routedThere = { ...config(), values: { ...base.values, 'checkpoint.topic': 'outbox.order' } };
    await expect(republish(new FakeOutbox([row('a', '2026-11-24 08:00:00+00')]).client, routedThere, options({ ids: ['a'] }, target), logger)).rejects.toMatchObject({
      code: 'TOPIC_INVALID',
      message: expect.stringContaining('"outbox.order" is the relay\'s checkpoint topic') as unknown,
    });
    expect(target.written).toEqual([]);
  });


  it('a row it cannot map stops the run with republish\'s way past it, not the relay\'s (a slot advance, a dead-letter policy: republish has neither)', async () => {
    const target = sink();
    const bad = { ...row('b', '2026-11-24 08:00:01+00'), aggregate_type: null };
    const outcome = await republish(new FakeOutbox([row('a', '2026-11-24 08:00:00+00'), bad]).client, config(), options({ ids: ['a', 'b'] }, target), logger).catch((err: unknown) => err);
    expect(outcome).toMatchObject({ code: 'RECORD_REQUIRED_NULL' });
    const hint = (outcome as RelayError).hint!;
    // Before: "… then restart; to get past this event instead: outbox-relay slot advance <its commit LSN + 1> --yes-skip-events, or run with delivery.onPoison=dead-letter"
    expect(hint).not.toMatch(/slot advance|onPoison|restart/);
    expect(hint).toContain('or, to get past this row, leave it out of the run (--until before its time, or --ids for the other rows); then run the same command again');
  });

  it('refuses a time column that is not a timestamp before reading a row (CONFIG_INVALID, exit 2), naming it', async () => {
    // Before: the run failed in the first row's mapping (RECORD_INVALID) and suggested resuming with --since 'order',
    // or in PostgreSQL (22P02) with its generic fix.
    const target = sink();
    const outcome = await republish(new FakeOutbox([row('a', '2026-11-24 08:00:00+00')]).client, config(), { ...options({ since: '2026-11-24 00:00:00+00' }, target), timeColumn: 'aggregate_type' }, logger).catch((err: unknown) => err);
    expect(outcome).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('column "aggregate_type" of public.outbox, the time republish selects and orders rows by, is not a timestamp') });
    expect(target.written).toEqual([]);
  });

  it('re-sends rows whose time column is NULL whatever page they fall on, and does not report them as not found', async () => {
    // NULL times sort last: the first page holds the two timed rows; a keyset "(time, id) > (last time, last id)"
    // is NULL (not true) for every row whose time is NULL, so the pages after it returned nothing.
    const rows = [row('a', '2026-11-24 08:00:00+00'), row('b', '2026-11-24 08:00:01+00'), row('c', null), row('d', null), row('e', null)];
    const outbox = new FakeOutbox(rows);
    const target = sink();
    const summary = await republish(outbox.client, config(), options({ ids: ['a', 'b', 'c', 'd', 'e'] }, target), logger);
    expect(target.written).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(summary).toMatchObject({ events: 5, notFound: [] });
  });

  it('reads rows with a time in (time, id) order across pages, and reports missing ids', async () => {
    const rows = [row('c', '2026-11-24 08:00:00+00'), row('a', '2026-11-24 08:00:00+00'), row('b', '2026-11-24 07:00:00+00')];
    const target = sink();
    const summary = await republish(new FakeOutbox(rows).client, config(), options({ ids: ['a', 'b', 'c', 'x'] }, target, 1), logger);
    expect(target.written).toEqual(['b', 'a', 'c']);
    expect(summary.notFound).toEqual(['x']);
  });
});

describe('republish --ids, ids in another form than PostgreSQL prints', () => {
  const INT8_OID = 20;
  const UUID_OID = 2950;
  const columns = ['id', 'aggregate_type', 'aggregate_id', 'event_type', 'payload', 'headers', 'created_at'];

  it('an integer id with zeros or a sign in front, or blanks around it, is found', async () => {
    const outbox = new FakeOutbox([row('7', '2026-11-24 08:00:00+00'), row('8', '2026-11-24 08:00:01+00'), row('9', '2026-11-24 08:00:02+00')], columns, { id: INT8_OID });
    const target = sink();
    const summary = await republish(outbox.client, config(), options({ ids: ['007', '+8', ' 9 ', '10', 'x'] }, target), logger);
    expect(target.written).toEqual(['7', '8', '9']);
    expect(summary.notFound).toEqual(['10', 'x']);
  });

  it('a uuid in upper case, braced or without hyphens is found; one with blanks around it, which PostgreSQL refuses, is not sent for', async () => {
    const id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
    const outbox = new FakeOutbox([row(id, '2026-11-24 08:00:00+00')], columns, { id: UUID_OID });
    const given = [id.toUpperCase(), `{${id}}`, id.replaceAll('-', ''), 'a0eebc999c0b-4ef8-bb6d-6bb9-bd380a11', ` ${id}`];
    const summary = await republish(outbox.client, config(), options({ ids: given }, sink()), logger);
    expect(summary.notFound).toEqual([` ${id}`]);
    // The ids are sent as PostgreSQL prints them; uuid_in refuses blanks, so that one would fail the query whole (22P02).
    expect(outbox.parameters.at(-1)![0]).toEqual([id, id, id, id]);
  });
});

describe('republish, a row the mapper refuses', () => {
  it('is named by its id, not by a commit LSN the row read from the table does not have', async () => {
    const rows = [{ ...row('a', '2026-11-24 08:00:00+00'), payload: null }];
    await expect(republish(new FakeOutbox(rows).client, config(), options({ ids: ['a'] }, sink()), logger)).rejects.toMatchObject({
      code: 'RECORD_REQUIRED_NULL',
      message: expect.stringMatching(/^the payload column is NULL in public\.outbox \(the row with id "a"\) \(republish of public\.outbox stopped in the page starting at time [^,]+, id "a"\)/) as unknown,
      details: expect.not.objectContaining({ lsn: expect.anything() }) as unknown,
    });
  });

  it('quotes an id of 100,000 characters by its first 300 and its length, as the row and as the page it stopped in', async () => {
    const id = 'x'.repeat(100_000);
    const quoted = `"${'x'.repeat(300)}…" (100000 characters)`;
    const outcome = await republish(new FakeOutbox([{ ...row(id, '2026-11-24 08:00:00+00'), payload: null }]).client, config(), options({ ids: [id] }, sink()), logger).catch((err: unknown) => err as RelayError);
    expect(outcome).toBeInstanceOf(RelayError);
    expect((outcome as RelayError).message).toBe(`the payload column is NULL in public.outbox (the row with id ${quoted}) (republish of public.outbox stopped in the page starting at time 2026-11-24 08:00:00+00, id ${quoted})`);
  });
});

describe('republish --since', () => {
  it('pages through rows with equal times without skipping one', async () => {
    const rows = ['a', 'b', 'c', 'd', 'e'].map((id) => row(id, '2026-11-24 08:00:00+00'));
    const target = sink();
    await republish(new FakeOutbox(rows).client, config(), options({ since: '2026-11-24 08:00:00+00' }, target), logger);
    expect(target.written).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('gives up on a broker that never answers after retry.maxDuration, naming the page to resume from, instead of waiting for ever', async () => {
    // librdkafka's plain producer has no message timeout: a silent broker never answers the send.
    const rows = [row('a', '2026-11-24 08:00:00+00')];
    const run = republish(new FakeOutbox(rows).client, config({ deliveryTimeoutMs: 20, maxDurationMs: 100 }), options({ since: '2026-11-24 07:00:00+00' }, sink('hang')), logger);
    const outcome = await Promise.race([run.then(() => 'finished', (err: unknown) => err), new Promise((resolve) => setTimeout(() => resolve('still waiting after 2 s'), 2000))]);
    expect(outcome).toMatchObject({ code: 'KAFKA_UNAVAILABLE', hint: expect.stringContaining("--since '2026-11-24 08:00:00+00'") as unknown });
  });

  it.each([
    ['a broker that never answers', () => sink('hang')],
    ['a broker that refuses each attempt (retried with backoff)', () => ({ ...sink(), send: async () => Promise.reject(Object.assign(new Error('Broker: Not enough in-sync replicas'), { code: 19, retriable: true })) })],
  ])('a signal while Kafka does not take the batch (%s): INTERRUPTED naming where to go on, not KAFKA_UNAVAILABLE as if it had given up', async (_case, target) => {
    const rows = [row('a', '2026-11-24 08:00:00+00')];
    const stop = new AbortController();
    // kafka.deliveryTimeout 60 s: the signal ends the wait at once, not at the next stall period.
    const run = republish(new FakeOutbox(rows).client, config({ deliveryTimeoutMs: 60_000, maxDurationMs: 600_000 }), { ...options({ since: '2026-11-24 07:00:00+00' }, target()), signal: stop.signal }, logger);
    setTimeout(() => stop.abort(), 100);
    const outcome = await Promise.race([run.then(() => 'finished', (err: unknown) => err), new Promise((resolve) => setTimeout(() => resolve('still waiting after 2 s'), 2000))]);
    expect(outcome).toMatchObject({ code: 'INTERRUPTED', hint: expect.stringMatching(/^the batch may be in Kafka or not; then run the same command with --since '2026-11-24 08:00:00\+00'/) as unknown });
  });
});

describe('republish, a publication with a row filter', () => {
  // setup --row-filter / docs/event-shaping.md: the publication keeps these rows out of the stream altogether, so
  // the relay never produced them; re-sent from the table, they reached Kafka for the first time.
  const publication = { rowFilter: "aggregate_type <> 'internal'", passes: (r: Record<string, string | null>) => r.aggregate_type !== 'internal' };
  const rows = [row('a', '2026-11-24 08:00:00+00'), { ...row('b', '2026-11-24 08:00:01+00'), aggregate_type: 'internal' }, row('c', '2026-11-24 08:00:02+00')];

  it.each<[string, RepublishOptions['selection']]>([
    ['--since', { since: '2026-11-24 07:00:00+00' }],
    ['--ids', { ids: ['a', 'b', 'c'] }],
  ])('%s re-sends only the rows the publication publishes, as the relay would', async (_flag, selection) => {
    const target = sink();
    const summary = await republish(new FakeOutbox(rows, undefined, undefined, publication).client, config(), options(selection, target), logger);
    expect(target.written).toEqual(['a', 'c']);
    // Left out as the filter.* settings leave rows out: counted, and an id it leaves out is not "not found".
    expect(summary).toMatchObject({ events: 2, filtered: 1 });
    if ('ids' in selection) expect(summary.notFound).toEqual([]);
  });

  it('--dry-run counts the same rows', async () => {
    const summary = await republish(new FakeOutbox(rows, undefined, undefined, publication).client, config(), { ...options({ since: '2026-11-24 07:00:00+00' }, sink()), sink: undefined }, logger);
    expect(summary).toMatchObject({ events: 2, filtered: 1, dryRun: true });
  });
});

describe('republish, a publication that does not publish the table', () => {
  // No row filter applies then, and every selected row is sent: the warn line says how to restore a filter, which
  // differs by why the table is not published. It said "re-create it (outbox-relay setup --row-filter …)" in every
  // case: setup refuses a publication that exists without the table (PG_SETUP_CHECKS_FAILED), and neither line
  // named the likeliest cause, republish's --publication not being the relay's.
  function warnings(publication: ConstructorParameters<typeof FakeOutbox>[3]): Promise<string[]> {
    const lines: string[] = [];
    const capture = pino({ level: 'warn' }, { write: (line: string) => void lines.push((JSON.parse(line) as { msg: string }).msg) });
    const outbox = new FakeOutbox([row('a', '2026-11-24 08:00:00+00')], undefined, undefined, publication);
    return republish(outbox.client, config(), { ...options({ ids: ['a'] }, sink()), sink: undefined }, capture).then(() => lines);
  }

  it('that does not exist: dropped, or not the relay\'s; made again with its filter by setup', async () => {
    expect(await warnings(undefined)).toEqual([
      'publication "outbox_relay" does not exist (dropped, or not the one the relay streams with: pass its --publication): republish applies no row filter to public.outbox and sends every selected row; if the dropped publication had a row filter, create it again with that filter first (outbox-relay setup --row-filter …), then republish',
    ]);
  });

  it('none when the publication publishes it (here with a row filter)', async () => {
    expect(await warnings({ rowFilter: "aggregate_type <> 'internal'", passes: () => true })).toEqual([]);
  });

  it('that exists without the table: taken out of it, or not the relay\'s; the table added back with its filter, not setup (which refuses it)', async () => {
    expect(await warnings('without-table')).toEqual([
      'publication "outbox_relay" does not publish public.outbox (taken out of it, or not the one the relay streams with: pass its --publication): republish applies no row filter to it and sends every selected row; if the table had a row filter there, add it back with that filter first (ALTER PUBLICATION "outbox_relay" ADD TABLE "public"."outbox" WHERE (…);, with the filter (and the column list) the relay\'s PG_TABLE_NOT_PUBLISHED fix names if it saw the table published), then republish',
    ]);
  });
});

describe('republish, a page that cannot be read', () => {
  it('names where to go on, as a failed send does, keeping the connection error as the command classifies it', async () => {
    // A failover or a restart of PostgreSQL mid-run: the command said "run the command again" (from the original
    // --since: every page sent once more), where docs/delivery-guarantees.md promises the page to resume from.
    const rows = ['a', 'b', 'c', 'd', 'e'].map((id, i) => row(id, `2026-11-24 08:00:0${i}+00`));
    const outbox = new FakeOutbox(rows);
    let pages = 0;
    const client = {
      query: (q: string | { text: string }, values?: unknown[]) => {
        if (typeof q !== 'string' && q.text.includes(' LIMIT ') && ++pages === 2) return Promise.reject(new Error('Connection terminated unexpectedly'));
        return outbox.client.query(q as string, values);
      },
    } as unknown as typeof outbox.client;
    const classify = (err: unknown) => new RelayError('PG_CONNECT_FAILED', `lost the connection to PostgreSQL during the command: ${(err as Error).message}`, { hint: 'check that PostgreSQL is up' });
    const target = sink();
    await expect(republish(client, config(), { ...options({ since: '2026-11-24 07:00:00+00' }, target), classify }, logger)).rejects.toMatchObject({
      code: 'PG_CONNECT_FAILED',
      hint: expect.stringContaining("run the same command with --since '2026-11-24 08:00:00+00'") as unknown,
    });
    expect(target.written).toEqual(['a', 'b']);
  });
});
