import { afterEach, describe, expect, it } from 'vitest';
import { useOwnServer } from '../support/own-server.js';
import { KafkaBroker } from '../../stack/index.js';
import { useFreshDatabase } from '../support/database.js';
import { commitRecordLsn, committedIds, compareDelivery, insertEvents, setupOutbox, slotConfirmedLsn, waitForConfirmedAll } from '../support/outbox.js';
import { killAllRelays, startRelay, type RelayProcess } from '../support/relay-process.js';
import { readTopic, stack, uniqueName } from '../support/services.js';

// A killed broker is an outage within kafka.deliveryTimeout (librdkafka holds records until then); it ends the relay
// after retry.maxDuration of it.
const FAST_GIVE_UP = ['--retry-initial-delay', '100ms', '--retry-max-delay', '500ms', '--kafka-delivery-timeout', '2s', '--retry-max-duration', '3s'];

/** The one error line of a relay that exited 1: `giving up`, RETRIES_EXHAUSTED, with the fix. */
async function givingUp(relay: RelayProcess): Promise<Record<string, unknown>> {
  expect(await relay.exitCode(), relay.dump()).toBe(1);
  const errors = relay.logs.filter((l) => l.level === 'error' || l.level === 'fatal');
  expect(errors, relay.dump()).toEqual([
    // The fix is the retried failure's (a silent broker's, or an unreachable one's), then what the exit does.
    expect.objectContaining({ msg: 'giving up', code: 'RETRIES_EXHAUSTED', fix: expect.stringMatching(/^check .*; the relay exits so that it is restarted, and resumes from the last confirmed position$/) }),
  ]);
  expect(relay.stderr, relay.dump()).toEqual([]);
  return errors[0]!;
}

// The test kills the broker, so it runs against one of its own (small: it restarts sooner).
describe.skipIf(!stack().owned.kafka)('relay: a Kafka outage longer than retry.maxDuration ends the relay (exit 1), and loses nothing', () => {
  const db = useFreshDatabase('giveup');
  const kafka = useOwnServer(new KafkaBroker({ name: uniqueName('giveup'), heap: '384m', quickRestart: true }));
  afterEach(async () => {
    await killAllRelays();
  });

  // One outage for both guarantees: a broker restart costs more than the rest of the test.
  it('while streaming: exit 1, one giving up line (RETRIES_EXHAUSTED), the slot held below the outage\'s events, all of them delivered after a restart; at-most-once with an idle outbox after a dropped batch too', async () => {
    const setup = await setupOutbox(db(), { brokers: kafka.brokers });
    const relay = startRelay([...setup.args, ...FAST_GIVE_UP]);
    // kafkajs: a send to a killed broker fails at once, so the batch is dropped before any stall check opens the
    // outage (with librdkafka that race may go either way: see ops.readiness), and then nothing more is sent.
    const atMostOnce = await setupOutbox(db(), { brokers: kafka.brokers, extraArgs: ['--delivery-guarantee', 'at-most-once', '--kafka-client', 'kafkajs'] });
    const dropping = startRelay([...atMostOnce.args, ...FAST_GIVE_UP]);
    await Promise.all([relay.waitForMessage('streaming from PostgreSQL'), dropping.waitForMessage('streaming from PostgreSQL')]);
    await insertEvents(db(), 5);
    await Promise.all([waitForConfirmedAll(db(), setup.slot), waitForConfirmedAll(db(), atMostOnce.slot)]);
    const confirmedBeforeKill = await slotConfirmedLsn(db(), setup.slot);

    await kafka.kill();
    const during = await insertEvents(db(), 5);
    const [reason, dropReason] = await Promise.all([givingUp(relay), givingUp(dropping)]);
    expect(String(reason.err)).toMatch(/^Kafka unavailable for \d+ s( \(\d+ attempts\))?: /);
    expect(relay.logs.filter((l) => l.msg === 'Kafka unavailable: holding the confirmed position and retrying')).toHaveLength(1);
    // Not past the outage's transaction: an idle keepalive may confirm WAL without events, never an undelivered commit.
    const { rows } = await db().query<{ xid: string }>('SELECT xmin::text AS xid FROM outbox WHERE id = $1', [during[0]!.id]);
    const outageCommit = await commitRecordLsn(db(), rows[0]!.xid, confirmedBeforeKill);
    const confirmedAfter = await slotConfirmedLsn(db(), setup.slot);
    expect(confirmedAfter).toBeGreaterThanOrEqual(confirmedBeforeKill);
    expect(confirmedAfter).toBeLessThanOrEqual(outageCommit);

    expect(String(dropReason.err)).toMatch(/^Kafka unavailable for \d+ s( \(\d+ attempts\))?: /);
    expect(dropping.logs.filter((l) => l.msg === 'Kafka refused a batch: at-most-once drops it, it is not retried (delivery.guarantee=at-most-once)'), dropping.dump()).toEqual([
      expect.objectContaining({ dropped: 5 }),
    ]);

    await kafka.start();
    const restarted = startRelay(setup.args);
    await waitForConfirmedAll(db(), setup.slot);
    const committed = await committedIds(db());
    const records = await readTopic(setup.topic, { expected: committed.length, brokers: kafka.brokers, settleMs: 500 });
    expect(compareDelivery(committed, records.map((r) => r.key)).missing).toEqual([]);
    restarted.signal('SIGTERM');
    expect(await restarted.exited, restarted.dump()).toBe(0);
  });
});
