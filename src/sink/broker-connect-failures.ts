import { settingRef } from '../config/settings.js';
import { RelayError } from '../errors.js';
import type { KafkaSettings } from '../config/types.js';
import { classifyRdKafkaError } from './rdkafka-errors.js';
import { bootstrapServers } from './topic-check.js';

/** The fix of a broker certificate neither client could verify. */
function unverifiedFix(): string {
  return `give the CA that signed the brokers' certificates (PEM) as ${settingRef('kafka.sslCaFile')}, or install it among the system's CAs (kafka.ssl without a CA file trusts those); and check that kafka.brokers names the hosts the certificates were issued for`;
}

/** The brokers' certificate could not be verified: retried as an outage (a rotation may be under way), with the fix. */
export function unverifiedCertificate(reason: string, cause: unknown): RelayError {
  return new RelayError('KAFKA_UNAVAILABLE', `the brokers' TLS certificate could not be verified: ${reason}`, { cause, retriable: true, hint: unverifiedFix() });
}

/**
 * "[thrd:…]: sasl_ssl://host:9093/bootstrap: SSL handshake failed: … (after 11ms in state SSL_HANDSHAKE, …)" (a log
 * line; an error event's message has no thread).
 */
const LOG_LINE = /^(?:\[thrd:[^\]]*\]: )?(\S+): (.*?)(?: \(after \d+ms in state .*\))?$/;
const SASL_FAILED = /^SASL authentication error: (.*)$/;
const TLS_FAILED = /^SSL handshake failed: (.*)$|^(.*SSL routines.*)$/;

/**
 * Why librdkafka could not connect to a broker, where it says so: only in its log (facility FAIL). The errors its
 * clients' connect calls fail with say "broker transport failure" or a timeout, whatever the cause, so a wrong CA
 * or SASL password looked like a network outage. The sinks and the checkpoint client feed their clients' FAIL
 * lines here and explain() a connect failure with the newest reason seen since that attempt began.
 */
export class BrokerConnectFailures {
  private last: { atMs: number; explain: (cause: RelayError) => RelayError } | undefined;

  /** kafka.brokers: the SASL fix's kafka-configs.sh needs them (it has no default) to run as printed. */
  constructor(private readonly brokers: KafkaSettings['brokers']) {}

  observe(message: string): void {
    const line = LOG_LINE.exec(message);
    if (!line) return;
    const [, broker, reason] = line as unknown as [string, string, string];
    const sasl = SASL_FAILED.exec(reason);
    const tlsLine = TLS_FAILED.exec(reason);
    const tls = tlsLine && (tlsLine[1] ?? tlsLine[2]!);
    let explain: ((cause: RelayError) => RelayError) | undefined;
    if (sasl) {
      explain = (cause) =>
        new RelayError('KAFKA_AUTH', `Kafka refused access: ${broker}: SASL authentication failed: ${sasl[1]}`, {
          cause,
          retriable: true,
          hint: `check kafka.saslMechanism, kafka.saslUsername and the password (kafka.saslPasswordFile, read without its surrounding whitespace) against the user the brokers know (for SCRAM: kafka-configs.sh --bootstrap-server ${bootstrapServers(this.brokers)} --describe --entity-type users)`,
        });
    } else if (tls && /certificate verify failed/.test(reason)) {
      explain = (cause) => unverifiedCertificate(`${broker}: ${tls}`, cause);
    } else if (tls) {
      explain = (cause) =>
        new RelayError('KAFKA_UNAVAILABLE', `the TLS handshake with ${broker} failed: ${tls}`, {
          cause,
          retriable: true,
          hint: 'check that kafka.brokers names the brokers\' TLS listener (a TLS client on a PLAINTEXT listener, or the reverse, fails the handshake) and that kafka.ssl / kafka.sslCaFile are set for it',
        });
    }
    if (explain) this.last = { atMs: Date.now(), explain };
  }

  /**
   * Why an attempt begun at `sinceMs` could not reach the brokers, where librdkafka logged it meanwhile; else `err`
   * as it was (so is any error but unavailability: a refused record, an unknown topic).
   */
  explain(err: unknown, sinceMs: number): unknown {
    if (this.last === undefined || this.last.atMs < sinceMs) return err;
    const error = classifyRdKafkaError(err);
    return error.code === 'KAFKA_UNAVAILABLE' ? this.last.explain(error) : err;
  }

  /** Runs `attempt` (a connect, and what a client just connected asks), rejecting with its failure explained. */
  async during<T>(attempt: () => Promise<T>): Promise<T> {
    const startedAt = Date.now();
    try {
      return await attempt();
    } catch (err) {
      throw this.explain(err, startedAt);
    }
  }
}
