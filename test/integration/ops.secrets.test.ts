import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaBroker } from '../../stack/index.js';
import { useDatabase } from '../support/database.js';
import { startSaslBroker } from '../support/sasl-broker.js';
import { insertEvents, setupOutbox } from '../support/outbox.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { readTopic, stack } from '../support/services.js';

const URL_PASSWORD = 'Url-Pa55-q8Zr';
const FILE_PASSWORD = 'File-Pa55-t3Wx';
const SASL_PASSWORD = 'Sasl-Pa55-m4Kd';

function secretFile(content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'relay-secret-')), 'password');
  writeFileSync(path, `${content}\n`);
  return path;
}

/** Everything the process wrote: every parsed log line and stderr. */
function expectNoSecrets(relay: RelayProcess, secrets: string[]): void {
  const output = relay.dump();
  expect(relay.logs.length).toBeGreaterThan(3);
  for (const secret of secrets) expect(output, `secret ${secret} leaked`).not.toContain(secret);
}

/** The test server trusts every local connection, so any password is accepted and merely has to stay hidden. */
function withPassword(url: string, password: string, database?: string): string {
  const parsed = new URL(url);
  parsed.password = password;
  if (database) parsed.pathname = `/${database}`;
  return parsed.toString();
}

describe('ops: secrets never reach the logs', () => {
  const db = useDatabase('opssecrets');

  it('a password in the URL and a password file, at debug level, through start, delivery and shutdown', async () => {
    const setup = await setupOutbox(db());
    const relay = startRelay([
      ...setup.args,
      '--postgres-url', withPassword(db().url, URL_PASSWORD),
      '--postgres-password-file', secretFile(FILE_PASSWORD),
      '--log-level', 'debug',
    ]);
    const starting = await relay.waitForMessage('starting outbox-relay');
    expect((starting.settings as Record<string, string>)['postgres.url']).toContain(':***@');
    await relay.waitForMessage('streaming from PostgreSQL');
    await insertEvents(db(), 5);
    expect(await readTopic(setup.topic, { expected: 5 })).toHaveLength(5);
    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
    expectNoSecrets(relay, [URL_PASSWORD, FILE_PASSWORD]);
  });

  it('a PostgreSQL connection that fails (unknown database) reports the error without the password', async () => {
    const setup = await setupOutbox(db());
    const relay = startRelay([...setup.args, '--postgres-url', withPassword(db().url, URL_PASSWORD, 'no_such_database'), '--log-level', 'debug']);
    const halted = await relay.waitForLog((l) => l.level === 'error', 30_000, 'the connection error');
    expect(halted.code).toBe('PG_CONNECT_FAILED');
    relay.signal('SIGTERM');
    await relay.exited;
    expectNoSecrets(relay, [URL_PASSWORD]);
  });

  // Starts a broker of its own, as the stack's do: skipped where the tests run against external services.
  describe.skipIf(!stack().owned.kafka)('with a broker that requires SASL/PLAIN', () => {
    let broker: KafkaBroker;
    let saslBrokers: string[];
    beforeAll(async () => {
      ({ broker, saslBrokers } = await startSaslBroker('sasl', SASL_PASSWORD));
    });
    afterAll(async () => {
      await broker.stop();
      broker.destroy();
    });

    it('a SASL password from the environment: authenticates, delivers, and stays out of the logs', async () => {
      const setup = await setupOutbox(db(), { brokers: broker.brokers });
      const relay = startRelay(
        [...setup.args, '--kafka-brokers', saslBrokers.join(','), '--kafka-sasl-mechanism', 'plain', '--kafka-sasl-username', 'relay', '--log-level', 'debug'],
        { OUTBOX_RELAY_KAFKA_SASL_PASSWORD: SASL_PASSWORD },
      );
      const starting = await relay.waitForMessage('starting outbox-relay');
      expect((starting.settings as Record<string, string>)['kafka.saslPassword']).toBe('***');
      await relay.waitForMessage('streaming from PostgreSQL');
      await insertEvents(db(), 3);
      expect(await readTopic(setup.topic, { expected: 3, brokers: broker.brokers })).toHaveLength(3);
      relay.signal('SIGTERM');
      expect(await relay.exited).toBe(0);
      expectNoSecrets(relay, [SASL_PASSWORD]);
    });

    it('a wrong SASL password from a file: rejected by the broker until the relay gives up, never logged', async () => {
      const wrong = `${SASL_PASSWORD}-wrong`;
      const setup = await setupOutbox(db(), { brokers: broker.brokers });
      const relay = startRelay([
        ...setup.args,
        '--kafka-brokers', saslBrokers.join(','),
        '--kafka-sasl-mechanism', 'plain',
        '--kafka-sasl-username', 'relay',
        '--kafka-sasl-password-file', secretFile(wrong),
        // kafkajs names the broker's SASL refusal; librdkafka reports only a transport failure after its
        // metadata timeout (docs/delivery-guarantees.md, Kafka clients), so the refusal is checked with kafkajs.
        '--kafka-client', 'kafkajs',
        '--retry-max-duration', '1s',
        '--retry-max-delay', '200ms',
        '--log-level', 'debug',
      ]);
      expect(await relay.exited).toBe(1);
      expect(relay.logs.some((l) => l.code === 'KAFKA_AUTH'), relay.dump()).toBe(true);
      expectNoSecrets(relay, [wrong, SASL_PASSWORD]);
    });
  });
});
