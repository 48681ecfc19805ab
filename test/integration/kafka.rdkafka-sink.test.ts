import { readdirSync, readFileSync } from 'node:fs';
import type { Producer } from '@confluentinc/kafka-javascript';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/relay-config.js';
import type { RelayError } from '../../src/errors.js';
import type { ProduceCalls } from '../../src/sink/rdkafka-produce.js';
import { RdKafkaSink } from '../../src/sink/rdkafka-sink.js';
import type { SinkRecord } from '../../src/sink/sink.js';
import { createTopic, readTopic, stack, uniqueName } from '../support/services.js';

const logger = pino({ level: 'silent' });
const record = (topic: string, i: number, value = Buffer.from(`{"i":${i}}`)): SinkRecord => ({ topic, key: Buffer.from(`k${i}`), value, headers: { id: `e${i}`, 'outbox-lsn': '0/10', raw: Buffer.from([0, 255]) } });

async function sink(producer?: string): Promise<RdKafkaSink> {
  const config = loadConfig({ flags: { 'kafka.brokers': stack().brokers.join(','), ...(producer ? { 'kafka.producer': producer } : {}) }, env: {} });
  const s = await RdKafkaSink.create(config.kafka, logger);
  await s.connect();
  return s;
}

/** librdkafka's threads in this process: each handle's main thread (rdk:main) and background threads (rdk:bg). */
function librdkafkaThreads(): { main: number; background: number } {
  const names = readdirSync('/proc/self/task').map((tid) => {
    try {
      return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
    } catch {
      return ''; // the thread ended meanwhile
    }
  });
  return { main: names.filter((n) => n === 'rdk:main').length, background: names.filter((n) => n === 'rdk:bg').length };
}

async function rejection(promise: Promise<void>): Promise<RelayError> {
  try {
    await promise;
  } catch (err) {
    return err as RelayError;
  }
  throw new Error('expected the send to be rejected');
}

describe('librdkafka sink on the native producer', () => {
  let open: RdKafkaSink | undefined;
  afterEach(async () => {
    await open?.close();
    open = undefined;
  });

  it('runs on the addon `npm ci` patched (batch produce, lean reports in batches); records arrive as sent: headers byte for byte (UTF-8, binary, empty, a 40 kB set), string, binary and null keys, empty and null values, timestamps, two topics in one send', async () => {
    const topic = uniqueName('native-headers');
    const other = uniqueName('native-other');
    await createTopic(topic);
    await createTopic(other);
    open = await sink();
    // This install's addon must be the patched one: without it the relay falls back to the slower forms.
    const { calls, producer } = (open as unknown as { connected: { calls: ProduceCalls; producer: Producer } }).connected;
    expect(calls.patched).toBe(true);
    const reports: unknown[] = [];
    producer.on('delivery-report', (_err, report) => reports.push(report));
    const big = 'b'.repeat(40_000);
    const sent: SinkRecord[] = [
      { ...record(topic, 0), key: 'k0-text', headers: { id: 'e0', 'outbox-lsn': '0/10', città: 'Zürich 🚀', raw: Buffer.from([0, 255, 10]), empty: '' } },
      { ...record(topic, 1), headers: { id: 'e1', big }, timestampMs: 1_700_000_000_123 },
      { ...record(other, 2), key: null, value: Buffer.alloc(0), headers: {} },
      { ...record(topic, 3), value: null, headers: { id: 'e3' } },
    ];
    await open.send(sent);
    const delivered = [...(await readTopic(topic, { expected: 3 })), ...(await readTopic(other, { expected: 1 }))];
    const asBytes = (headers: Record<string, string | Buffer>) => Object.entries(headers).map(([name, value]) => [name, Buffer.from(value)]);
    expect(delivered.map((r) => Object.entries(r.rawHeaders).map(([name, value]) => [name, value]))).toEqual([0, 1, 3, 2].map((i) => asBytes(sent[i]!.headers)));
    expect(delivered.map((r) => r.key)).toEqual(['k0-text', 'k1', 'k3', null]);
    expect(delivered.map((r) => (r.value === null ? null : r.value.toString()))).toEqual(['{"i":0}', '{"i":1}', null, '']);
    expect(delivered[1]!.timestamp).toBe(1_700_000_000_123);
    // The four successful reports came as batches of opaques (the send's id), none on its own.
    expect(reports.every((r) => 'outboxOpaques' in (r as object))).toBe(true);
    const opaques = reports.flatMap((r) => (r as { outboxOpaques: unknown[] }).outboxOpaques);
    expect(opaques).toHaveLength(4);
    expect(new Set(opaques).size).toBe(1);
    expect(typeof opaques[0]).toBe('number');
  });

  it("serves the producer's delivery reports on the event loop, without a librdkafka background thread, and the sends' reports arrive", async () => {
    const topic = uniqueName('native-loop');
    await createTopic(topic);
    const before = librdkafkaThreads();
    open = await sink();
    await open.send([record(topic, 0), record(topic, 1)]);
    await open.send([record(topic, 2)]);
    const after = librdkafkaThreads();
    // Each librdkafka handle has one rdk:main thread. The sink opened two, its admin client (for topic checks),
    // which serves its requests on a background thread (rdk:bg), and its producer, which must not have one: the
    // unpatched addon's way (setPollInBackground) would start it.
    expect(after.main - before.main).toBe(2);
    expect(after.background - before.background).toBe(1);
    expect((await readTopic(topic, { expected: 3 })).map((r) => r.headers.id)).toEqual(['e0', 'e1', 'e2']);
  });

  it('rejects a batch with a record the broker refuses as RECORD_TOO_LARGE, delivers the rest once, and keeps producing', async () => {
    const ok = uniqueName('native-ok');
    const small = uniqueName('native-small');
    await createTopic(ok);
    await createTopic(small, 1, undefined, [{ name: 'max.message.bytes', value: '2000' }]);
    open = await sink();
    const batch = [record(ok, 0), record(ok, 1), record(small, 2, Buffer.alloc(10_000, 'x')), record(ok, 3), record(ok, 4)];
    const error = await rejection(open.send(batch));
    expect(error.code).toBe('RECORD_TOO_LARGE');
    expect(error.retriable).toBe(false);
    // The sink goes on (with a new producer: the refusal is fatal under the gap-less guarantee); the engine
    // produces the batch's records one by one next.
    await open.send([record(small, 5)]);
    const delivered = await readTopic(ok, { expected: 4 });
    expect(delivered.map((r) => r.headers.id)).toEqual(['e0', 'e1', 'e3', 'e4']);
    expect(delivered[0]!.headers).toMatchObject({ 'outbox-lsn': '0/10', raw: Buffer.from([0, 255]).toString() });
    expect((await readTopic(small, { expected: 1 })).map((r) => r.headers.id)).toEqual(['e5']);
  });

  it('a record the broker refuses fails the sends produced behind it to that partition: none of them is written ahead of its re-send (gap-less)', async () => {
    const small = uniqueName('native-gapless');
    await createTopic(small, 1, undefined, [{ name: 'max.message.bytes', value: '2000' }]);
    open = await sink();
    const s = open;
    // The topic checked and its leader known: each send below goes to librdkafka as it is called.
    await s.send([record(small, 100)]);
    let refusedAt = Infinity;
    const refused = rejection(s.send([record(small, 0, Buffer.alloc(10_000, 'x'))])).then((error) => {
      refusedAt = performance.now();
      return error;
    });
    // One send a millisecond while the refused request is in flight: some go out in requests of their own behind it.
    const behind: { i: number; calledAt: number; outcome: Promise<boolean> }[] = [];
    for (let i = 1; i <= 20; i++) {
      const calledAt = performance.now();
      behind.push({ i, calledAt, outcome: s.send([record(small, i)]).then(() => true, () => false) });
      await new Promise((r) => setTimeout(r, 1));
    }
    expect((await refused).code).toBe('RECORD_TOO_LARGE');
    const written = await Promise.all(behind.map(async (b) => ({ ...b, ok: await b.outcome })));
    // Before: librdkafka renumbered the requests behind the refused one and wrote them, so a partition got records
    // that the engine, which re-sends the refused batch and everything behind it, meant to come after the re-send.
    const before = written.filter((b) => b.calledAt < refusedAt);
    console.log(`gap-less: ${before.length} sends produced behind the refused one before its report, ${before.filter((b) => b.ok).length} of them written`);
    const aheadOfResend = written.filter((b) => b.ok && b.calledAt < refusedAt).map((b) => b.i);
    expect(aheadOfResend).toEqual([]);
  });

  it('classifies a record librdkafka refuses at once (over the client message.max.bytes) and still reports the records before it', async () => {
    const topic = uniqueName('native-local');
    await createTopic(topic);
    open = await sink('message.max.bytes=5000');
    const error = await rejection(open.send([record(topic, 0), record(topic, 1, Buffer.alloc(20_000, 'x')), record(topic, 2)]));
    expect(error.code).toBe('RECORD_TOO_LARGE');
    await open.send([record(topic, 3)]);
    // Record 2 came after the refused one: the call stopped there (the engine re-sends the batch record by record).
    expect((await readTopic(topic, { expected: 2 })).map((r) => r.headers.id)).toEqual(['e0', 'e3']);
  });
});
