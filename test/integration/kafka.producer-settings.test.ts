import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KafkaJS, features } from '@confluentinc/kafka-javascript';
import { describe, expect, it } from 'vitest';
import { runDir } from '../../stack/paths.js';
import { waitUntil } from '../../stack/index.js';
import { currentWalLsn, insertEvents, setupOutbox, slotConfirmedLsn } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { stack, uniqueName } from '../support/services.js';
import { useFreshDatabase } from '../support/database.js';

/** Record batch attribute bits 0-2 (Kafka's message format v2). */
const CODEC_IDS: Record<string, number> = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 };

/** Reads with librdkafka, which decodes every codec (kafkajs decodes only gzip). */
async function readValues(topic: string, expected: number): Promise<Map<string, Buffer>> {
  const kafka = new KafkaJS.Kafka({ kafkaJS: { brokers: stack().brokers, logLevel: KafkaJS.logLevel.NOTHING } });
  const consumer = kafka.consumer({ kafkaJS: { groupId: uniqueName('reader'), fromBeginning: true } });
  const values = new Map<string, Buffer>();
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic] });
    await consumer.run({ eachMessage: async ({ message }) => void values.set(message.headers!.id!.toString(), message.value!) });
    await waitUntil(`${expected} records on ${topic}`, () => values.size >= expected, 60_000).catch(() => undefined);
  } finally {
    await consumer.disconnect();
  }
  return values;
}

/** The codec of the first record batch of partition 0, from the broker's own log segment (the test stack's broker). */
function firstBatchCodec(topic: string): number | undefined {
  const find = (dir: string, depth: number): string | undefined => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      if (entry.name === `${topic}-0`) return join(dir, entry.name);
      const found = depth > 0 ? find(join(dir, entry.name), depth - 1) : undefined;
      if (found) return found;
    }
    return undefined;
  };
  const partitionDir = find(runDir(), 3);
  if (!partitionDir) return undefined;
  const segment = readFileSync(join(partitionDir, '00000000000000000000.log'));
  // baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8, crc int32, then attributes int16.
  return segment.readInt16BE(21) & 0x7;
}

describe('Kafka producer settings', () => {
  const db = useFreshDatabase('producer');

  it.each([
    ['rdkafka', 'gzip'],
    ['rdkafka', 'snappy'],
    ['rdkafka', 'lz4'],
    ['rdkafka', 'zstd'],
    ['kafkajs', 'gzip'],
  ])('kafka.client %s with kafka.compression %s: every payload reads back byte for byte, compressed with that codec (a codec librdkafka was built without: refused at start, naming it)', async (client, codec) => {
    // A checkpoint topic of its own: another test's exactly-once relay, killed, can leave a transaction open on the
    // shared one, and a read_committed reader waits for it.
    const setup = await setupOutbox(db(), { extraArgs: ['--kafka-client', client, '--kafka-compression', codec, ...(client === 'rdkafka' ? ['--kafka-linger', '5ms'] : []), '--checkpoint-topic', uniqueName('checkpoints')] });
    const relay = startRelay(setup.args);
    if (client === 'rdkafka' && !features.includes(codec)) {
      // librdkafka compiled without this codec (zstd without libzstd-dev): refused at start, naming the fix.
      expect(await relay.exited).toBe(2);
      expect([...relay.stderr, ...relay.logs.map((l) => JSON.stringify(l))].join('\n')).toContain(`kafka.compression ${codec} is not supported by kafka.client rdkafka as built here`);
      return;
    }
    await relay.waitForMessage('streaming from PostgreSQL', 60_000);
    // Compressible and not: repeated text, non-ASCII characters, escapes.
    const inserted = await insertEvents(db(), 30, { payload: (i) => JSON.stringify({ i, text: 'outbox '.repeat(200), utf8: 'äöü €😀 "quoted" \\ back', n: i * 1.5 }) });
    const end = await currentWalLsn(db());
    await waitUntil('slot confirmed the inserts', async () => (await slotConfirmedLsn(db(), setup.slot)) >= end, 60_000, 100);

    const values = await readValues(setup.topic, inserted.length);
    const stored = await db().query<{ id: string; payload: string }>('SELECT id::text, payload::text AS payload FROM outbox');
    expect(values.size).toBe(stored.rows.length);
    for (const row of stored.rows) expect(values.get(row.id)?.equals(Buffer.from(row.payload, 'utf8')), `payload of ${row.id}`).toBe(true);
    // The codec is read from the broker's log segment: only a broker the stack started has one here.
    if (stack().owned.kafka) expect(firstBatchCodec(setup.topic)).toBe(CODEC_IDS[codec]);
    else console.warn(`kafka.compression ${codec}: the codec was not checked (the broker is not the stack's own, its log segments are not readable here); only the payloads were`);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('refuses a pass-through property that breaks the guarantees at start (exit 2), naming the key', async () => {
    const relay = startRelay(['run', '--kafka-brokers', stack().brokers.join(','), '--kafka-producer', 'enable.idempotence=false']);
    expect(await relay.exited).toBe(2);
    expect(relay.stderr.join('\n')).toContain('kafka.producer.enable.idempotence is not allowed');
  });

  it('refuses a codec kafkajs cannot write at start (exit 2), naming the client and the setting', async () => {
    const relay = startRelay(['run', '--kafka-brokers', stack().brokers.join(','), '--kafka-client', 'kafkajs', '--kafka-compression', 'zstd']);
    expect(await relay.exited).toBe(2);
    expect(relay.stderr.join('\n')).toContain('kafka.compression zstd is not supported by kafka.client kafkajs');
  });
});
