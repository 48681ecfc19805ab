import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from '../../src/lsn.js';
import { KafkaBroker, waitUntil } from '../../stack/index.js';
import { freePort } from '../../stack/ports.js';
import { runCliJson } from '../support/cli.js';
import { httpArgs } from '../support/ops-http.js';
import { useDatabase } from '../support/database.js';
import { committedIdsWithEndLsn, currentWalLsn, insertEvents, setupOutbox, waitForConfirmedAll } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic, stack, transactionsReady, uniqueName } from '../support/services.js';

interface StatusJson {
  checkpoint: { checkpoint: { lsn: string } | null };
}

const SCRAM_USER = 'outbox-relay';
const SCRAM_PASSWORD = 'Scram-Pa55-w7Qn';

/** A throwaway CA, and a broker certificate it signed for 127.0.0.1; a second CA that signed nothing here. */
function certificates(dir: string): { ca: string; otherCa: string; keystore: string } {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const name of ['ca', 'other-ca']) openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=outbox-relay test ${name}`);
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'broker.key', '-out', 'broker.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('x509', '-req', '-in', 'broker.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'broker.pem', '-days', '2', '-extfile', 'san.cnf');
  // Kafka's PEM key store: the (unencrypted PKCS#8) private key and the certificate chain in one file.
  const keystore = join(dir, 'broker-keystore.pem');
  writeFileSync(keystore, readFileSync(join(dir, 'broker.key'), 'utf8') + readFileSync(join(dir, 'broker.pem'), 'utf8'));
  return { ca: join(dir, 'ca.pem'), otherCa: join(dir, 'other-ca.pem'), keystore };
}

// docs/security.md's "Kafka over TLS with SASL/SCRAM", against a broker of its own that takes only that on the
// listener the relay is given (the plaintext one is the test's, to create topics and read them back).
describe.skipIf(!stack().owned.kafka)('Kafka over TLS with SASL/SCRAM-SHA-512', () => {
  const db = useDatabase('kafkatls');
  const dir = mkdtempSync(join(tmpdir(), 'kafka-tls-'));
  let certs: ReturnType<typeof certificates>;
  let broker: KafkaBroker;
  let secure: string;
  const passwordFile = join(dir, 'kafka-password');

  beforeAll(async () => {
    certs = certificates(dir);
    writeFileSync(passwordFile, `${SCRAM_PASSWORD}\n`);
    const [port, controllerPort, securePort] = await Promise.all([freePort(), freePort(), freePort()]);
    broker = new KafkaBroker({
      name: uniqueName('tls'),
      port,
      controllerPort,
      scramUsers: [{ mechanism: 'SCRAM-SHA-512', name: SCRAM_USER, password: SCRAM_PASSWORD }],
      properties: {
        listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort},SASL_SSL://127.0.0.1:${securePort}`,
        'advertised.listeners': `PLAINTEXT://127.0.0.1:${port},SASL_SSL://127.0.0.1:${securePort}`,
        'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL',
        'sasl.enabled.mechanisms': 'SCRAM-SHA-512',
        'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config': 'org.apache.kafka.common.security.scram.ScramLoginModule required;',
        'listener.name.sasl_ssl.ssl.keystore.type': 'PEM',
        'listener.name.sasl_ssl.ssl.keystore.location': certs.keystore,
      },
    });
    await broker.start();
    // The exactly-once case asserts no warn line: the broker's transaction coordinator is up before it.
    await transactionsReady(broker.brokers);
    secure = `127.0.0.1:${securePort}`;
  });
  afterAll(async () => {
    await broker?.stop();
    broker?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The flags of docs/security.md's example: the CA file (which implies TLS), SCRAM-SHA-512, a password file. */
  const tlsArgs = (ca = certs.ca) => ['--kafka-brokers', secure, '--kafka-ssl-ca-file', ca, '--kafka-sasl-mechanism', 'scram-sha-512', '--kafka-sasl-username', SCRAM_USER, '--kafka-sasl-password-file', passwordFile];

  it.each([
    ['rdkafka', 'at-least-once'],
    ['rdkafka', 'exactly-once'],
    ['kafkajs', 'at-least-once'],
  ])('%s, %s: delivers every event through the TLS listener and confirms the slot; `status` reads the checkpoint there too', async (client, guarantee) => {
    const setup = await setupOutbox(db(), { brokers: broker.brokers });
    const http = await httpArgs();
    const relay = startRelay([...setup.args, ...tlsArgs(), ...http.args, '--kafka-client', client, '--delivery-guarantee', guarantee]);
    await relay.waitForMessage('streaming from PostgreSQL', 60_000);
    const from = await currentWalLsn(db());
    const events = await insertEvents(db(), 5);
    await waitForConfirmedAll(db(), setup.slot, 60_000);
    const records = await readTopic(setup.topic, { expected: 5, brokers: broker.brokers, readCommitted: guarantee === 'exactly-once' });
    expect(records.map((r) => r.key)).toEqual(events.map((e) => e.id));

    // The checkpoint topic is read through the same listener, with the same flags, and names a position at or past
    // the events' commit once the relay wrote it there (not the slot's: an idle relay confirms keepalive positions
    // beyond the last commit, which exactly-once's checkpoint, written with a transaction, does not record).
    const endLsn = (await committedIdsWithEndLsn(db(), from))[0]!.endLsn;
    const statusArgs = ['status', '--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication, ...tlsArgs(), '--kafka-client', client, '--delivery-guarantee', guarantee, '--relay-url', http.base];
    let status: Awaited<ReturnType<typeof runCliJson<StatusJson>>> | undefined;
    const checkpointed = async () => {
      status = await runCliJson<StatusJson>(statusArgs);
      const lsn = status.json.checkpoint.checkpoint?.lsn;
      return lsn !== undefined && parseLsn(lsn) >= endLsn;
    };
    await waitUntil(`a checkpoint at or past ${formatLsn(endLsn)} in status`, checkpointed, 30_000, 500).catch((err: Error) => {
      throw new Error(`${err.message}\n${status?.stdout}${status?.stderr}`);
    });
    expect(status!.code, status!.stdout + status!.stderr).toBe(0);

    relay.signal('SIGTERM');
    expect(await relay.exited, relay.dump()).toBe(0);
    expect(relay.logs.filter((l) => l.level === 'warn' || l.level === 'error'), relay.dump()).toEqual([]);
  });

  /**
   * Runs the relay with `args` until it gives up (retry.maxDuration 3 s): its one error line. A connect attempt is
   * bounded by kafka.requestTimeout (at most 10 s): 2 s here, librdkafka logs the reason within milliseconds.
   */
  async function givingUp(args: string[]) {
    const setup = await setupOutbox(db(), { brokers: broker.brokers });
    const relay = startRelay([...setup.args, ...args, '--retry-max-duration', '3s', '--retry-max-delay', '200ms', '--kafka-request-timeout', '2s']);
    expect(await relay.exitCode(60_000), relay.dump()).toBe(1);
    const errors = relay.logs.filter((l) => l.level === 'error');
    expect(errors, relay.dump()).toHaveLength(1);
    return { error: errors[0]!, relay, setup };
  }

  // Before, librdkafka's (the default client's) "broker transport failure" and the generic fix (reach the
  // brokers, advertised.listeners, "the TLS/SASL settings") for a wrong CA, a wrong password or a TLS client on a
  // PLAINTEXT listener alike: the reason was only in its debug log.
  it.each(['rdkafka', 'kafkajs'])('%s: a CA that did not sign the brokers\' certificate: gives up naming the unverified certificate and kafka.sslCaFile', async (client) => {
    const { error } = await givingUp([...tlsArgs(certs.otherCa), '--kafka-client', client]);
    expect(error, JSON.stringify(error)).toMatchObject({ msg: 'giving up', code: 'KAFKA_UNAVAILABLE', err: expect.stringContaining("the brokers' TLS certificate could not be verified") as unknown });
    expect(String(error.fix)).toContain('kafka.sslCaFile (--kafka-ssl-ca-file / OUTBOX_RELAY_KAFKA_SSL_CA_FILE)');
  });

  it.each(['rdkafka', 'kafkajs'])('%s: a wrong SCRAM password: gives up with KAFKA_AUTH, the broker\'s refusal and what to check', async (client) => {
    const wrong = join(dir, 'wrong-password');
    writeFileSync(wrong, `${SCRAM_PASSWORD}-wrong\n`);
    const args = tlsArgs();
    args[args.indexOf('--kafka-sasl-password-file') + 1] = wrong;
    const { error } = await givingUp([...args, '--kafka-client', client]);
    expect(error, JSON.stringify(error)).toMatchObject({ msg: 'giving up', code: 'KAFKA_AUTH', err: expect.stringMatching(/invalid credentials with SASL mechanism SCRAM-SHA-512/) as unknown });
    expect(String(error.fix)).toMatch(/kafka\.saslUsername|kafka\.saslMechanism/);
  });

  it('rdkafka: TLS flags against the PLAINTEXT listener: gives up naming the failed TLS handshake and the listener to use', async () => {
    const { error } = await givingUp([...tlsArgs(), '--kafka-brokers', broker.brokers.join(',')]);
    expect(error, JSON.stringify(error)).toMatchObject({ msg: 'giving up', code: 'KAFKA_UNAVAILABLE', err: expect.stringMatching(/the TLS handshake with sasl_ssl:\/\/127\.0\.0\.1:\d+\/bootstrap failed: .*PLAINTEXT broker listener/) as unknown });
    expect(String(error.fix)).toContain("TLS listener");
  });

  it('rdkafka: `status` with the wrong CA names the unverified certificate where it reads the checkpoint', async () => {
    const setup = await setupOutbox(db(), { brokers: broker.brokers });
    const status = await runCliJson<{ checkpoint: unknown }>(['status', '--postgres-url', db().url, '--slot', setup.slot, '--publication', setup.publication, ...tlsArgs(certs.otherCa), '--relay-url', (await httpArgs()).base]);
    // Before: CHECKPOINT_FAILED "cannot read the checkpoint topic …: Local: Broker transport failure".
    expect(status.json.checkpoint, status.stdout).toMatchObject({
      checkpoint: null,
      error: { code: 'KAFKA_UNAVAILABLE', message: expect.stringContaining("the brokers' TLS certificate could not be verified") as unknown, fix: expect.stringContaining('kafka.sslCaFile') as unknown },
    });
  });
});
