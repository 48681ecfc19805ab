import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes, type AclEntry } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaBroker, waitUntil } from '../../stack/index.js';
import { freePort } from '../../stack/ports.js';
import { runCliJson } from '../support/cli.js';
import { checkpointStore } from '../support/checkpoints.js';
import { useDatabase } from '../support/database.js';
import { startSaslBroker } from '../support/sasl-broker.js';
import { committedIdsWithEndLsn, currentWalLsn, insertEvents, setupOutbox, slotConfirmedLsn, type OutboxSetup } from '../support/outbox.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { createTopic, kafkaClient, readTopic, stack, transactionsReady, uniqueName } from '../support/services.js';
import { printedAclCommands } from '../support/printed-command.js';

const PRINCIPAL = 'User:relay';
const PASSWORD = 'Acl-Pa55-r7Qn';
const CHECKPOINT_READER_GROUP = 'outbox-relay-checkpoint-reader';

type Client = 'rdkafka' | 'kafkajs';
type Guarantee = 'at-least-once' | 'exactly-once';

function acl(resourceType: AclResourceTypes, resourceName: string, operation: AclOperationTypes, prefixed = false): AclEntry {
  return {
    resourceType,
    resourceName,
    resourcePatternType: prefixed ? ResourcePatternTypes.PREFIXED : ResourcePatternTypes.LITERAL,
    principal: PRINCIPAL,
    host: '*',
    operation,
    permissionType: AclPermissionTypes.ALLOW,
  };
}

/**
 * The rows of docs/security.md's ACL table for one client and mode, and nothing more: no CREATE (the checkpoint
 * topic is created by hand, as the table's CREATE row allows) and no DESCRIBE_CONFIGS (optional there).
 */
function documentedAcls(client: Client, guarantee: Guarantee, eventTopic: string, checkpointTopic: string, slot: string): AclEntry[] {
  const { TOPIC, GROUP, TRANSACTIONAL_ID } = AclResourceTypes;
  const { WRITE, DESCRIBE, READ } = AclOperationTypes;
  return [
    acl(TOPIC, eventTopic, WRITE),
    acl(TOPIC, eventTopic, DESCRIBE),
    acl(TOPIC, checkpointTopic, WRITE),
    acl(TOPIC, checkpointTopic, DESCRIBE),
    acl(TOPIC, checkpointTopic, READ),
    client === 'rdkafka' ? acl(GROUP, CHECKPOINT_READER_GROUP, DESCRIBE) : acl(GROUP, `${CHECKPOINT_READER_GROUP}-`, READ, true),
    ...(guarantee === 'exactly-once' ? [acl(TRANSACTIONAL_ID, `outbox-relay.${slot}`, WRITE), acl(TRANSACTIONAL_ID, `outbox-relay.${slot}`, DESCRIBE)] : []),
  ];
}

describe('ops: the Kafka ACLs docs/security.md lists are enough, on a broker with an authorizer', () => {
  const db = useDatabase('opskafkaacls');

  // Starts a broker of its own, as the SASL tests do: skipped where the tests run against external services.
  describe.skipIf(!stack().owned.kafka)('StandardAuthorizer, the relay a SASL/PLAIN user', () => {
    let broker: KafkaBroker;
    let saslBrokers: string[];
    beforeAll(async () => {
      // The plaintext and controller listeners are ANONYMOUS, the super user: the test's own admin and the node
      // itself. Only the relay's SASL user is bound by the ACLs.
      ({ broker, saslBrokers } = await startSaslBroker('acls', PASSWORD, {
        'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
        'super.users': 'User:ANONYMOUS',
      }));
      // The exactly-once case asserts no warn line: the broker's transaction coordinator is up before it.
      await transactionsReady(broker.brokers);
    });
    afterAll(async () => {
      await broker.stop();
      broker.destroy();
    });

    async function grant(acls: AclEntry[]): Promise<void> {
      const admin = kafkaClient(broker.brokers).admin();
      await admin.connect();
      try {
        await admin.createAcls({ acl: acls });
      } finally {
        await admin.disconnect();
      }
    }

    /**
     * The ACLs the one kafka-acls.sh printed in `fix` adds, read as a shell hands it the words: its brokers must be the
     * relay's kafka.brokers, and its <principal> is the relay's.
     */
    function printedGrant(fix: string): AclEntry[] {
      const [words, ...more] = printedAclCommands(fix);
      expect(more, fix).toEqual([]);
      expect(words!.slice(0, 6), fix).toEqual(['kafka-acls.sh', '--bootstrap-server', saslBrokers.join(','), '--add', '--allow-principal', '<principal>']);
      const operations: AclOperationTypes[] = [];
      const resources: [AclResourceTypes, string][] = [];
      for (let i = 6; i < words!.length; i += 2) {
        const [flag, value] = [words![i]!, words![i + 1]!];
        if (flag === '--operation') operations.push({ Write: AclOperationTypes.WRITE, Describe: AclOperationTypes.DESCRIBE }[value]!);
        else if (flag === '--topic') resources.push([AclResourceTypes.TOPIC, value]);
        else if (flag === '--transactional-id') resources.push([AclResourceTypes.TRANSACTIONAL_ID, value]);
        else throw new Error(`unexpected ${flag} in ${fix}`);
      }
      return resources.flatMap(([type, name]) => operations.map((operation) => acl(type, name, operation)));
    }

    /** Takes back every WRITE the relay's principal was granted (the earlier tests' grants stay on the broker). */
    async function revokeWrites(): Promise<void> {
      const admin = kafkaClient(broker.brokers).admin();
      await admin.connect();
      try {
        await admin.deleteAcls({
          filters: [{ resourceType: AclResourceTypes.ANY, resourcePatternType: ResourcePatternTypes.ANY, principal: PRINCIPAL, host: '*', operation: AclOperationTypes.WRITE, permissionType: AclPermissionTypes.ANY }],
        });
      } finally {
        await admin.disconnect();
      }
    }

    function relayAs(setup: OutboxSetup, checkpointTopic: string, client: Client, guarantee: Guarantee): RelayProcess {
      return startRelay([
        ...setup.args,
        '--kafka-brokers', saslBrokers.join(','),
        '--kafka-sasl-mechanism', 'plain',
        '--kafka-sasl-username', 'relay',
        '--kafka-client', client,
        '--delivery-guarantee', guarantee,
        '--checkpoint-topic', checkpointTopic,
      ], { OUTBOX_RELAY_KAFKA_SASL_PASSWORD: PASSWORD });
    }

    /** Runs the relay until it delivered `count` more events and the slot confirmed them, then stops it: exit 0. */
    async function deliver(setup: OutboxSetup, checkpointTopic: string, client: Client, guarantee: Guarantee, count: number, total: number): Promise<void> {
      const relay = relayAs(setup, checkpointTopic, client, guarantee);
      await relay.waitForMessage('streaming from PostgreSQL');
      await insertEvents(db(), count);
      const records = await readTopic(setup.topic, { expected: total, brokers: broker.brokers, readCommitted: guarantee === 'exactly-once' });
      expect(new Set(records.map((r) => r.key)).size, relay.dump()).toBe(total);
      relay.signal('SIGTERM');
      expect(await relay.exited, relay.dump()).toBe(0);
      // Nothing the relay was refused, the checkpoint's writes and reads included.
      expect(relay.logs.filter((l) => l.level === 'warn' || l.level === 'error'), relay.dump()).toEqual([]);
    }

    it.each([
      ['rdkafka', 'at-least-once'],
      ['rdkafka', 'exactly-once'],
      ['kafkajs', 'at-least-once'],
    ] as const)('%s, %s: delivers, writes its checkpoint to a topic created by hand, and reads it back at the next start', async (client, guarantee) => {
      const setup = await setupOutbox(db(), { brokers: broker.brokers, extraArgs: ['--status-interval', '200ms'] });
      const checkpointTopic = uniqueName('checkpoints');
      await createTopic(checkpointTopic, 1, broker.brokers, [{ name: 'cleanup.policy', value: 'compact' }]);
      await grant(documentedAcls(client, guarantee, setup.topic, checkpointTopic, setup.slot));

      const from = await currentWalLsn(db());
      // Written: at or past the commit of every delivered event, and not past the slot (which may be ahead of it:
      // exactly-once writes a checkpoint only with a Kafka transaction, and idle keepalives move the slot on).
      const expectCheckpointCovers = async () => {
        const written = await checkpointStore(checkpointTopic, broker.brokers).read(setup.slot);
        const ends = (await committedIdsWithEndLsn(db(), from)).map((e) => e.endLsn);
        expect(written?.lsn).toBeGreaterThanOrEqual(ends.reduce((a, b) => (a > b ? a : b)));
        expect(written!.lsn).toBeLessThanOrEqual(await slotConfirmedLsn(db(), setup.slot));
      };
      await deliver(setup, checkpointTopic, client, guarantee, 3, 3);
      await expectCheckpointCovers();

      // The next start reads that checkpoint (READ, and the group ACL of its client) and goes on from it.
      await deliver(setup, checkpointTopic, client, guarantee, 2, 5);
      await expectCheckpointCovers();

      // status --kafka-brokers as the same principal: the checkpoint, and no error reading it.
      const status = await runCliJson<{ checkpoint?: { checkpoint: { lsn: string } | null; error?: unknown } }>(
        [
          'status', '--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication,
          '--relay-url', `http://127.0.0.1:${await freePort()}`,
          '--kafka-brokers', saslBrokers.join(','), '--kafka-sasl-mechanism', 'plain', '--kafka-sasl-username', 'relay',
          '--kafka-client', client, '--checkpoint-topic', checkpointTopic,
        ],
        { OUTBOX_RELAY_KAFKA_SASL_PASSWORD: PASSWORD },
      );
      expect(status.json.checkpoint?.error, status.stderr).toBeUndefined();
      // The checkpoint the relay wrote (an absent key passed the old not.toBeNull()).
      expect(status.json.checkpoint?.checkpoint?.lsn, status.stderr).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    });

    // The brokers give an idempotent producer its id only with WRITE on some topic (or IDEMPOTENT_WRITE on the
    // cluster); refused, librdkafka makes the producer fatal and purges its records. The outage said only
    // "Purged in queue" (KAFKA_UNAVAILABLE) until retry.maxDuration: the fatal error event's cause was lost in the
    // client's addon (change 7 of scripts/patch-kafka-client.mjs).
    it('rdkafka, at-least-once, without WRITE on any topic: the outage opens while idle, naming the refused access (KAFKA_AUTH) and the grant, and the grant ends it, every event delivered', async () => {
      const setup = await setupOutbox(db(), { brokers: broker.brokers, extraArgs: ['--status-interval', '200ms'] });
      const checkpointTopic = uniqueName('checkpoints');
      await createTopic(checkpointTopic, 1, broker.brokers, [{ name: 'cleanup.policy', value: 'compact' }]);
      const acls = documentedAcls('rdkafka', 'at-least-once', setup.topic, checkpointTopic, setup.slot);
      const writes = acls.filter((a) => a.operation === AclOperationTypes.WRITE);
      await revokeWrites();
      await grant(acls.filter((a) => !writes.includes(a)));

      const relay = relayAs(setup, checkpointTopic, 'rdkafka', 'at-least-once');
      await relay.waitForMessage('streaming from PostgreSQL');
      // Idle, no event sent: the producer's id is asked for when it is made, and its refusal opens the outage at
      // once (it waited for the first event before).
      const refused = await relay.waitForMessage('Kafka unavailable: holding the confirmed position and retrying');
      expect(refused.code, relay.dump()).toBe('KAFKA_AUTH');
      expect(refused.err, relay.dump()).toContain('Cluster authorization failed');
      expect(String(refused.fix), relay.dump()).toContain('IdempotentWrite');
      const from = await currentWalLsn(db());
      await insertEvents(db(), 3);

      await grant(writes);
      await relay.waitForMessage('Kafka available again: delivery resumed');
      const records = await readTopic(setup.topic, { expected: 3, brokers: broker.brokers });
      expect(new Set(records.map((r) => r.key)).size, relay.dump()).toBe(3);
      // The checkpoint writer's producer was refused its id too: it gets a new one and writes again.
      const last = (await committedIdsWithEndLsn(db(), from)).map((e) => e.endLsn).reduce((a, b) => (a > b ? a : b));
      await waitUntil('a checkpoint past the events', async () => ((await checkpointStore(checkpointTopic, broker.brokers).read(setup.slot))?.lsn ?? 0n) >= last, 20_000, 200).catch((err: Error) => {
        throw new Error(`${err.message}\n${relay.dump()}`);
      });
      relay.signal('SIGTERM');
      expect(await relay.exited, relay.dump()).toBe(0);
    });

    // Exactly-once writes the checkpoint in the events' transaction: the coordinator refuses to add the checkpoint
    // topic's partition, librdkafka names it only in its log and purges the records, and the outage said only
    // "Purged in queue" (KAFKA_UNAVAILABLE), no topic and no fix.
    it('rdkafka, exactly-once, without WRITE on the checkpoint topic: the outage names that topic and its setting (KAFKA_AUTH), and the grant ends it, every event delivered once', async () => {
      const setup = await setupOutbox(db(), { brokers: broker.brokers, extraArgs: ['--status-interval', '200ms'] });
      const checkpointTopic = uniqueName('checkpoints');
      await createTopic(checkpointTopic, 1, broker.brokers, [{ name: 'cleanup.policy', value: 'compact' }]);
      const acls = documentedAcls('rdkafka', 'exactly-once', setup.topic, checkpointTopic, setup.slot);
      const checkpointWrite = acls.filter((a) => a.operation === AclOperationTypes.WRITE && a.resourceName === checkpointTopic);
      expect(checkpointWrite).toHaveLength(1);
      await revokeWrites();
      await grant(acls.filter((a) => !checkpointWrite.includes(a)));

      const relay = relayAs(setup, checkpointTopic, 'rdkafka', 'exactly-once');
      await relay.waitForMessage('streaming from PostgreSQL');
      await insertEvents(db(), 3);
      const refused = await relay.waitForMessage('Kafka unavailable: holding the confirmed position and retrying');
      expect(refused.code, relay.dump()).toBe('KAFKA_AUTH');
      expect(refused.err, relay.dump()).toContain(`"${checkpointTopic}"`);
      expect(String(refused.fix), relay.dump()).toContain('--checkpoint-topic');

      // The grant as its fix prints it, and nothing else, ends the outage.
      const printed = printedGrant(String(refused.fix));
      expect(printed).toEqual(expect.arrayContaining(checkpointWrite));
      await grant(printed);
      await relay.waitForMessage('Kafka available again: delivery resumed');
      const records = await readTopic(setup.topic, { expected: 3, brokers: broker.brokers, readCommitted: true });
      expect(records, relay.dump()).toHaveLength(3);
      expect(new Set(records.map((r) => r.key)).size, relay.dump()).toBe(3);
      relay.signal('SIGTERM');
      expect(await relay.exited, relay.dump()).toBe(0);
    });

    // Exactly-once registers the slot's transactional id at each session's start: refused
    // (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), the start is retried, and its fix printed "kafka-acls.sh
    // --transactional-id;" with outbox-relay.<slot> for the id until 2026-12-08.
    it('rdkafka, exactly-once, without WRITE on the transactional id: the start retries (KAFKA_AUTH), and the grant its fix prints ends it, every event delivered once', async () => {
      const setup = await setupOutbox(db(), { brokers: broker.brokers, extraArgs: ['--status-interval', '200ms'] });
      const checkpointTopic = uniqueName('checkpoints');
      await createTopic(checkpointTopic, 1, broker.brokers, [{ name: 'cleanup.policy', value: 'compact' }]);
      const acls = documentedAcls('rdkafka', 'exactly-once', setup.topic, checkpointTopic, setup.slot);
      const idWrite = acls.filter((a) => a.operation === AclOperationTypes.WRITE && a.resourceType === AclResourceTypes.TRANSACTIONAL_ID);
      expect(idWrite).toHaveLength(1);
      await revokeWrites();
      await grant(acls.filter((a) => !idWrite.includes(a)));

      const relay = relayAs(setup, checkpointTopic, 'rdkafka', 'exactly-once');
      const refused = await relay.waitForMessage('Kafka unavailable while starting a replication session: retrying', 30_000);
      expect(refused.code, relay.dump()).toBe('KAFKA_AUTH');
      const printed = printedGrant(String(refused.fix));
      expect(printed).toEqual(expect.arrayContaining(idWrite));
      await grant(printed);
      await relay.waitForMessage('streaming from PostgreSQL', 60_000);
      await insertEvents(db(), 3);
      const records = await readTopic(setup.topic, { expected: 3, brokers: broker.brokers, readCommitted: true });
      expect(new Set(records.map((r) => r.key)).size, relay.dump()).toBe(3);
      relay.signal('SIGTERM');
      expect(await relay.exited, relay.dump()).toBe(0);
    });
  });
});
