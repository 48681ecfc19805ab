import { describe, expect, it } from 'vitest';
import { RelayError } from '../../src/errors.js';
import { BrokerConnectFailures } from '../../src/sink/broker-connect-failures.js';
import { classifyKafkaError } from '../../src/sink/kafka-errors.js';

// librdkafka's FAIL lines as the relay's debug log showed them against a broker of ops.kafka-tls.test.ts.
const UNVERIFIED =
  '[thrd:sasl_ssl://127.0.0.1:34429/bootstrap]: sasl_ssl://127.0.0.1:34429/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured or root CA certificates are installed (install ca-certificates package) (after 111ms in state SSL_HANDSHAKE)';
const UNVERIFIED_SHORT = '[thrd:sasl_ssl://127.0.0.1:34429/bootstrap]: sasl_ssl://127.0.0.1:34429/bootstrap: error:0A000086:SSL routines::certificate verify failed (after 11ms in state SSL_HANDSHAKE)';
const SASL =
  '[thrd:sasl_ssl://127.0.0.1:34429/bootstrap]: sasl_ssl://127.0.0.1:34429/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 340ms in state AUTH_REQ)';
const PLAINTEXT_LISTENER =
  '[thrd:sasl_ssl://127.0.0.1:36523/bootstrap]: sasl_ssl://127.0.0.1:36523/bootstrap: SSL handshake failed: Disconnected: SSL connection closed by peer: connecting to a PLAINTEXT broker listener? (after 10ms in state SSL_HANDSHAKE, 1 identical error(s) suppressed)';
const CLOSED = '[thrd:sasl_ssl://127.0.0.1:36523/bootstrap]: sasl_ssl://127.0.0.1:36523/bootstrap: Disconnected: SSL connection closed by peer (after 0ms in state SSL_HANDSHAKE)';

/** What the binding's connect rejects with, whatever the cause. */
const transportFailure = () => Object.assign(new Error('broker transport failure'), { code: -195 });

function explained(lines: string[], err: unknown = transportFailure(), sinceMs = 0): RelayError {
  const failures = new BrokerConnectFailures(['kafka-0:9093', 'kafka-1:9093']);
  for (const line of lines) failures.observe(line);
  return failures.explain(err, sinceMs) as RelayError;
}

describe("a librdkafka connect failure explained by the reason librdkafka logged", () => {
  it('an unverified certificate: the broker, OpenSSL\'s reason and kafka.sslCaFile', () => {
    for (const line of [UNVERIFIED, UNVERIFIED_SHORT]) {
      const error = explained([line]);
      expect(error.code).toBe('KAFKA_UNAVAILABLE');
      expect(error.retriable).toBe(true);
      expect(error.message).toMatch(/^the brokers' TLS certificate could not be verified: sasl_ssl:\/\/127\.0\.0\.1:34429\/bootstrap: error:0A000086:SSL routines::certificate verify failed/);
      expect(error.message).not.toContain('(after');
      expect(error.hint).toContain('kafka.sslCaFile (--kafka-ssl-ca-file / OUTBOX_RELAY_KAFKA_SSL_CA_FILE)');
    }
  });

  it('a refused SASL login: KAFKA_AUTH with the broker\'s words', () => {
    const error = explained([SASL]);
    expect(error).toMatchObject({ code: 'KAFKA_AUTH', message: 'Kafka refused access: sasl_ssl://127.0.0.1:34429/bootstrap: SASL authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512' });
    expect(error.hint).toContain('kafka.saslUsername');
    // Before: kafka-configs.sh without --bootstrap-server, which it requires.
    expect(error.hint).toContain('kafka-configs.sh --bootstrap-server kafka-0:9093,kafka-1:9093 --describe --entity-type users');
  });

  it('a TLS client on a PLAINTEXT listener: the failed handshake, not overwritten by the bare disconnect that follows it', () => {
    const error = explained([PLAINTEXT_LISTENER, CLOSED]);
    expect(error.message).toBe('the TLS handshake with sasl_ssl://127.0.0.1:36523/bootstrap failed: Disconnected: SSL connection closed by peer: connecting to a PLAINTEXT broker listener?');
    expect(error.hint).toContain("TLS listener");
  });

  it('the newest reason wins', () => {
    expect(explained([UNVERIFIED, SASL]).code).toBe('KAFKA_AUTH');
  });

  it('leaves the error as it was: nothing logged, logged before the attempt began, or not a failure to reach the brokers', () => {
    const err = transportFailure();
    expect(explained([CLOSED], err)).toBe(err);
    expect(explained([UNVERIFIED], err, Date.now() + 1000)).toBe(err);
    const tooLarge = Object.assign(new Error('Broker: Message size too large'), { code: 10 });
    expect(explained([UNVERIFIED], tooLarge)).toBe(tooLarge);
  });
});

describe("kafkajs' connection error for a certificate Node did not accept", () => {
  it('names the unverified certificate and kafka.sslCaFile, through the retries error that wraps it', () => {
    const connection = Object.assign(new Error('Connection error: unable to verify the first certificate'), { name: 'KafkaJSConnectionError', code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    const retries = Object.assign(new Error('Connection error: unable to verify the first certificate'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: connection });
    const error = classifyKafkaError(retries);
    expect(error).toMatchObject({ code: 'KAFKA_UNAVAILABLE', retriable: true, message: "the brokers' TLS certificate could not be verified: Connection error: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)" });
    expect(error.hint).toContain('kafka.sslCaFile');
    // A connection refused stays an outage with the brokers' fix.
    expect(classifyKafkaError(Object.assign(new Error('Connection error: connect ECONNREFUSED'), { name: 'KafkaJSConnectionError', code: 'ECONNREFUSED' })).message).toBe('Kafka produce failed: Connection error: connect ECONNREFUSED');
  });
});
