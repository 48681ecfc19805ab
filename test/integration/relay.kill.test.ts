import { KafkaJS } from '@confluentinc/kafka-javascript';
import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from '../../src/lsn.js';
import { committedIds, committedIdsWithEndLsn, compareDelivery, currentWalLsn, insertEvents, setupOutbox, slotConfirmedLsn, startWriters, waitForConfirmedAll, type OutboxSetup } from '../support/outbox.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { readTopic, stack, uniqueName } from '../support/services.js';
import { orderViolations } from '../support/fault-run.js';
import { useFreshDatabase } from '../support/database.js';
import { waitUntil } from '../../stack/index.js';

describe('relay: killed and stopped under load', () => {
  const db = useFreshDatabase('kill');
  const SMALL_WINDOW = 20;

  // Three relay starts, up to a minute each on a saturated 2-core machine: more than the default 120 s. Two kills
  // here; `npm run faults` (its broker phase) runs the long loop of 20 with the same read-back checks.
  it('loses nothing and keeps commit order per partition when SIGKILLed twice while writers commit', async () => {
    const setup = await setupOutbox(db(), { partitions: 3 });
    const writers = startWriters(db(), 4);
    const confirmedAtKill: bigint[] = [await slotConfirmedLsn(db(), setup.slot)];
    for (let round = 0; round < 2; round++) {
      const relay = startRelay(setup.args);
      await relay.waitForMessage('streaming from PostgreSQL');
      // Kill only after this run confirmed something (so progress is real), then at a varying moment, so kills
      // land in different phases: mid-batch, mid-transaction, between status updates.
      const previous = confirmedAtKill.at(-1)!;
      await waitUntil('progress before the kill', async () => (await slotConfirmedLsn(db(), setup.slot)) > previous, 30_000);
      await new Promise((r) => setTimeout(r, (round * 97) % 400));
      await relay.kill();
      confirmedAtKill.push(await slotConfirmedLsn(db(), setup.slot));
    }
    await writers.stop();
    const final = startRelay(setup.args);
    await waitForConfirmedAll(db(), setup.slot);
    final.signal('SIGTERM');
    expect(await final.exited).toBe(0);
    // Read once every relay exited: no record can arrive after the end offsets, so none needs waiting for.
    const committed = await committedIds(db());
    const records = await readTopic(setup.topic, { expected: committed.length, settleMs: 0 });
    const delivery = compareDelivery(committed, records.map((r) => r.key));
    const outOfOrder = orderViolations(records);
    console.log(
      `SIGKILL loop: ${committed.length} committed in ${writers.commits} transactions, ${records.length} records, ` +
        `${delivery.missing.length} lost, ${delivery.duplicates} duplicates, ${outOfOrder} out of commit order; confirmed LSN at kills: ${confirmedAtKill.map(formatLsn).join(' ')}`,
    );
    expect(delivery.missing).toEqual([]);
    // Each restart's first batches are in flight together: they must still reach each partition in commit order.
    expect(outOfOrder).toBe(0);
    expect(delivery.unexpected).toBe(0);
  }, 200_000);

  /** A restart, three more events, every committed event read back: what the restart sent again. */
  async function restartAndReadBack(setup: OutboxSetup, readCommitted: boolean): Promise<ReturnType<typeof compareDelivery>> {
    const restarted = startRelay(setup.args);
    await restarted.waitForMessage('streaming from PostgreSQL');
    await insertEvents(db(), 3);
    const committedAfter = await committedIds(db());
    await waitForConfirmedAll(db(), setup.slot);
    restarted.signal('SIGTERM');
    expect(await restarted.exited).toBe(0);
    // Read once the relay exited: what it re-sent is all there, to the end offsets, with nothing left to wait for.
    const after = await readTopic(setup.topic, { expected: committedAfter.length, settleMs: 0, readCommitted });
    return compareDelivery(committedAfter, after.map((r) => r.key));
  }

  it('drains on SIGTERM: in-flight events are acknowledged and confirmed, the exit code is 0, a restart re-sends nothing', async () => {
    const setup = await setupOutbox(db());
    const from = await currentWalLsn(db());
    // Transactions of up to 20 rows keep events in flight most of the time, so the signal is likely to meet some.
    const writers = startWriters(db(), 3, 20);
    const relay = startRelay(setup.args);
    await relay.waitForMessage('streaming from PostgreSQL');
    // Once a transaction is confirmed (the check below needs one), not after a fixed time a loaded machine can outlast.
    await waitUntil('a transaction confirmed', async () => {
      const confirmed = await slotConfirmedLsn(db(), setup.slot);
      return (await committedIdsWithEndLsn(db(), from)).some((c) => c.endLsn <= confirmed);
    }, 30_000, 100);
    // The signal lands while writers still commit, so events are in flight; transactions the relay had not read
    // yet are not its to drain: they come after the confirmed position and the restart delivers them.
    relay.signal('SIGTERM');
    await writers.stop();
    expect(await relay.exited).toBe(0);
    const stopped = relay.logs.find((l) => l.msg === 'stopped');
    expect(stopped, relay.dump()).toBeDefined();
    const confirmed = await slotConfirmedLsn(db(), setup.slot);
    // What the relay said it confirmed is what Postgres holds, and it reaches every transaction the relay had
    // read when the signal came: those in flight then were acknowledged before the exit.
    expect(formatLsn(confirmed)).toBe(stopped!.confirmedLsn);
    const stopping = relay.logs.find((l) => l.msg === 'stopping: draining in-flight events');
    expect(stopping?.drainToLsn, relay.dump()).toBeDefined();
    expect(confirmed).toBeGreaterThanOrEqual(parseLsn(String(stopping!.drainToLsn)));

    // The first run delivered exactly the transactions up to the confirmed position: none below it is missing,
    // none past it was sent (the restart would send that again).
    const committed = await committedIdsWithEndLsn(db(), from);
    expect(committed.length).toBe((await committedIds(db())).length);
    const confirmedIds = committed.filter((c) => c.endLsn <= confirmed).map((c) => c.id);
    expect(confirmedIds.length).toBeGreaterThan(0);
    // The relay exited: nothing more can arrive, so no settling time.
    const firstRun = await readTopic(setup.topic, { expected: confirmedIds.length, settleMs: 0 });
    const drained = compareDelivery(confirmedIds, firstRun.map((r) => r.key));
    expect(drained.missing).toEqual([]);
    expect(drained.unexpected).toBe(0);
    // The restart streams from the drained position: had the drain confirmed less than it delivered, the
    // events past the confirmed position would arrive again here.
    const delivery = await restartAndReadBack(setup, false);
    console.log(
      `SIGTERM drain: ${stopping!.inFlight} in flight when the drain began, ${committed.length} committed, ${firstRun.length} delivered before the restart ` +
        `(${committed.length - confirmedIds.length} committed after the confirmed position), ${delivery.duplicates - drained.duplicates} re-sent by it`,
    );
    expect(delivery.missing).toEqual([]);
    expect(delivery.duplicates).toBe(drained.duplicates);
    expect(delivery.unexpected).toBe(0);
  });

  /**
   * One source transaction far larger than the in-flight window: the relay reads it under backpressure for a while,
   * so once its first records are in Kafka a SIGTERM lands inside it, with part of it sent and its commit unread.
   * The window is 20 events (batches of at most 10, fewer with several in flight): the rest of the transaction takes
   * hundreds of acknowledged produce calls, where the test needs one offset read to send the signal (5,000 rows at
   * a load average of 15: the run with a 0 ms grace period sent 24 in all, its intake ended by the signal). Until
   * 2026-12-07 a 50,000-row transaction under the default window made that margin, at 25 times the rows to insert,
   * stream and read back. The callers assert the relay's line for a stop inside the transaction, so a signal that
   * came after its commit fails the test. Returns once the relay exited.
   */
  async function signalInsideTransaction(setup: OutboxSetup, rows: number): Promise<{ relay: RelayProcess; ids: string[]; endLsn: bigint }> {
    const from = await currentWalLsn(db());
    await insertEvents(db(), rows);
    const committed = await committedIdsWithEndLsn(db(), from);
    expect(committed.length).toBe(rows);
    const relay = startRelay([...setup.args, '--delivery-max-in-flight-events', String(SMALL_WINDOW)]);
    // The end offset counts records of an open Kafka transaction too (read_uncommitted, this admin's default;
    // kafkajs' admin reads read_committed offsets, which exactly-once moves only at its commit).
    const admin = new KafkaJS.Kafka({ kafkaJS: { brokers: stack().brokers, logLevel: KafkaJS.logLevel.NOTHING } }).admin();
    await admin.connect();
    try {
      await waitUntil('the first records of the transaction in Kafka', async () => Number((await admin.fetchTopicOffsets(setup.topic))[0]?.high) > 0, 60_000, 20);
    } finally {
      await admin.disconnect();
    }
    relay.signal('SIGTERM');
    expect(await relay.exited, relay.dump()).toBe(0);
    return { relay, ids: committed.map((c) => c.id), endLsn: committed[0]!.endLsn };
  }

  // exactly-once would otherwise abort the open Kafka transaction: nothing duplicated for read_committed readers, but
  // all of it produced again after the restart.
  it.each([
    { guarantee: 'at-least-once', readCommitted: false },
    { guarantee: 'exactly-once', readCommitted: true },
  ])('$guarantee: a SIGTERM inside a source transaction reads it to its commit: all of it delivered once and confirmed, a restart re-sends nothing', async ({ guarantee, readCommitted }) => {
    const setup = await setupOutbox(db(), { extraArgs: ['--delivery-guarantee', guarantee, '--checkpoint-topic', uniqueName('checkpoints')] });
    const rows = 2_000;
    const { relay, ids, endLsn } = await signalInsideTransaction(setup, rows);
    const reading = relay.logs.find((l) => l.msg === 'stopping: reading the open source transaction to its commit');
    expect(reading, relay.dump()).toBeDefined();
    const stopping = relay.logs.find((l) => l.msg === 'stopping: draining in-flight events');
    expect(stopping?.drainToLsn).toBe(formatLsn(endLsn));
    // At least the transaction's end: an idle keepalive read after it may confirm a little further (no events there).
    const confirmed = await slotConfirmedLsn(db(), setup.slot);
    expect(confirmed).toBeGreaterThanOrEqual(endLsn);
    expect(formatLsn(confirmed)).toBe(relay.logs.find((l) => l.msg === 'stopped')?.confirmedLsn);
    const firstRun = await readTopic(setup.topic, { expected: rows, settleMs: 0, readCommitted });
    const drained = compareDelivery(ids, firstRun.map((r) => r.key));
    expect(drained.missing.length).toBe(0);
    expect(drained.duplicates).toBe(0);
    expect(drained.unexpected).toBe(0);

    const delivery = await restartAndReadBack(setup, readCommitted);
    console.log(
      `${guarantee}: SIGTERM inside a ${rows}-row transaction: ${firstRun.length} delivered by the first run, ${stopping!.inFlight} in flight when its commit was read, ${delivery.duplicates} re-sent by the restart`,
    );
    expect(delivery.missing).toEqual([]);
    expect(delivery.duplicates).toBe(0);
    expect(delivery.unexpected).toBe(0);
  });

  it('a grace period that runs out inside a source transaction ends the intake there: a warn line, exit 0, nothing of it confirmed, the restart sends it whole', async () => {
    const setup = await setupOutbox(db(), { extraArgs: ['--shutdown-grace', '0ms'] });
    const rows = 2_000;
    const { relay, endLsn } = await signalInsideTransaction(setup, rows);
    const cut = relay.logs.find((l) => l.msg.startsWith('grace period over before the open source transaction was read to its commit'));
    expect(cut, relay.dump()).toBeDefined();
    expect(cut!.level).toBe('warn');
    expect(await slotConfirmedLsn(db(), setup.slot)).toBeLessThan(endLsn);
    const firstRun = await readTopic(setup.topic, { settleMs: 0 });
    expect(firstRun.length).toBeGreaterThan(0);
    const delivery = await restartAndReadBack(setup, false);
    console.log(`grace period over inside a ${rows}-row transaction: ${firstRun.length} sent by the first run, ${delivery.duplicates} sent again by the restart`);
    expect(delivery.missing).toEqual([]);
    expect(delivery.unexpected).toBe(0);
    // At least once: what the first run sent of the unconfirmed transaction arrives again, nothing more.
    expect(delivery.duplicates).toBe(firstRun.length);
  });
});
