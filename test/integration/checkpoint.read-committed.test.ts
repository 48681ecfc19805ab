import { describe, expect, it } from 'vitest';
import { checkpointStore } from '../support/checkpoints.js';
import { kafkaClient, uniqueName } from '../support/services.js';

/** A transactional kafkajs producer: stands in for a relay writing checkpoints under exactly-once. */
async function transactionalProducer(transactionalId: string) {
  const producer = kafkaClient().producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  return producer;
}

describe('checkpoint read (read_committed)', () => {
  // After a partition leader change the commit markers of a finished transaction can take seconds to land; until
  // then read_committed ends before its records, as it does before any open transaction. A read that stopped
  // there returned the checkpoint before it, and exactly-once streamed that transaction's events again (3,895
  // duplicates in one leader-kill run). This holds a transaction open the same way. kafkajs asks for the ends
  // read_committed (the last stable offset, below the open transaction): its read returned the older checkpoint.
  it.each(['rdkafka', 'kafkajs'] as const)('%s: does not stop at a transaction still open on the topic: it waits for it and returns the newer committed checkpoint', async (client) => {
    const store = checkpointStore(undefined, undefined, client);
    await store.ensureTopic();
    const slot = uniqueName('slot');
    const checkpoint = (lsn: bigint) => store.message({ slot, lsn, commitTimeMs: undefined, writtenAtMs: Date.now(), guarantee: 'exactly-once' });

    const writer = await transactionalProducer(uniqueName('writer'));
    const first = await writer.transaction();
    await first.send({ topic: store.topic, messages: [checkpoint(0x1000n)] });
    await first.commit();

    // Another producer's transaction opens on the topic, then this slot commits a newer checkpoint behind it.
    const other = await transactionalProducer(uniqueName('other'));
    const open = await other.transaction();
    await open.send({ topic: store.topic, messages: [{ key: 'another_slot', value: Buffer.from('{}') }] });
    const second = await writer.transaction();
    await second.send({ topic: store.topic, messages: [checkpoint(0x2000n)] });
    await second.commit();

    const reading = store.read(slot, 20_000);
    let settled = false;
    void reading.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((r) => setTimeout(r, 1500));
    // Still waiting for the open transaction, rather than answering with the checkpoint before it.
    expect(settled).toBe(false);
    await open.abort();
    expect((await reading)?.lsn).toBe(0x2000n);
    await Promise.all([writer.disconnect(), other.disconnect()]);
  });
});
