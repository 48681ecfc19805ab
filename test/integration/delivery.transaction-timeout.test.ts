import { beforeAll, describe, expect, it } from 'vitest';
import { useOwnServer } from '../support/own-server.js';
import { KafkaBroker } from '../../stack/index.js';
import { parseLsn } from '../../src/lsn.js';
import { useFreshDatabase } from '../support/database.js';
import { commitRecordLsn, committedIds, compareDelivery, currentWalLsn, setupOutbox, slotConfirmedLsn, waitForConfirmedAll } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic, stack, transactionsReady, uniqueName } from '../support/services.js';

/**
 * Rows of the one source transaction: producing them takes several seconds (200,000 took about 9 s on a 2-core host,
 * so these about 4.5 s), the timeout is 1 s. Fewer than before (200,000): the source streams them three times and the
 * test reads all three attempts back, the suite's longest single test on a slow host (115 s of file time).
 */
const ROWS = 100_000;

// The broker checks for timed-out transactions every 10 s by default: a broker of its own checks often, so that the
// 1 s timeout aborts the transaction about when it is due, well before it is produced.
describe.skipIf(!stack().owned.kafka)('delivery: exactly-once, a source transaction that takes longer to produce than delivery.transactionTimeout', () => {
  const db = useFreshDatabase('txntimeout');
  const kafka = useOwnServer(new KafkaBroker({ name: uniqueName('txntimeout'), heap: '512m', properties: { 'transaction.abort.timed.out.transaction.cleanup.interval.ms': '200' } }));
  // The test asserts the relay's one warn line: the broker's transaction coordinator is up before the relay starts.
  beforeAll(() => transactionsReady(kafka.brokers));

  it('the broker aborts it: streamed again once, then a halt (KAFKA_TXN_TIMEOUT naming the setting), nothing committed, the slot before it; a restart with a larger timeout delivers it exactly once', async () => {
    const setup = await setupOutbox(db(), { brokers: kafka.brokers, extraArgs: ['--delivery-guarantee', 'exactly-once', '--checkpoint-topic', uniqueName('checkpoints')] });
    const before = await currentWalLsn(db());
    await db().query(
      `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload)
       SELECT gen_random_uuid(), 'order', 'agg-' || (i % 10), 'OrderPlaced', jsonb_build_object('n', i) FROM generate_series(1, $1::int) AS i`,
      [ROWS],
    );
    const { rows } = await db().query<{ xid: string }>('SELECT xmin::text AS xid FROM outbox LIMIT 1');
    const commit = await commitRecordLsn(db(), rows[0]!.xid, before);

    const relay = startRelay([...setup.args, '--delivery-transaction-timeout', '1s']);
    const halted = await relay.waitForLog((l) => l.level === 'error', 90_000, 'the halt');
    expect(halted, relay.dump()).toMatchObject({ code: 'KAFKA_TXN_TIMEOUT', msg: 'halted: nothing after the confirmed position was confirmed; fix the cause and restart' });
    expect(String(halted.fix)).toContain('delivery.transactionTimeout');
    // Streamed again once: the first timeout restarted the source (its one warn line, with the code; no Kafka
    // outage: the brokers answered), the second halted.
    expect(relay.logs.filter((l) => l.msg === 'streaming from PostgreSQL'), relay.dump()).toHaveLength(2);
    expect(relay.logs.filter((l) => l.level === 'warn').map((l) => [l.msg, l.code]), relay.dump()).toEqual([['delivery aborted its uncommitted events: streaming again from the checkpoint', 'KAFKA_TXN_TIMEOUT']]);
    expect(await slotConfirmedLsn(db(), setup.slot)).toBeLessThanOrEqual(commit);
    expect(parseLsn(String(halted.confirmedLsn))).toBeLessThanOrEqual(commit);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(1);
    expect(relay.logs.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([halted]);
    expect(relay.stderr).toEqual([]);

    const restarted = startRelay([...setup.args, '--delivery-transaction-timeout', '60s']);
    // Nothing was committed: the restart finds no checkpoint (read with read_committed).
    expect((await restarted.waitForMessage('checkpoint read')).checkpoint).toBeNull();
    await waitForConfirmedAll(db(), setup.slot);
    const committed = await committedIds(db());
    expect(committed).toHaveLength(ROWS);
    // The topic holds both aborted attempts before the committed one: each id once means a read_committed
    // consumer sees none of theirs.
    const records = await readTopic(setup.topic, { expected: committed.length, brokers: kafka.brokers, readCommitted: true, settleMs: 500 });
    expect(compareDelivery(committed, records.map((r) => r.key))).toEqual({ missing: [], duplicates: 0, unexpected: 0 });
    restarted.signal('SIGTERM');
    expect(await restarted.exited).toBe(0);
    expect(restarted.logs.filter((l) => l.level === 'error' || l.level === 'warn'), restarted.dump()).toEqual([]);
  });
});
