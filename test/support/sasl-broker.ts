import { KafkaBroker } from '../../stack/index.js';
import { freePort } from '../../stack/ports.js';
import { uniqueName } from './services.js';

export interface SaslBroker {
  broker: KafkaBroker;
  /** The SASL_PLAINTEXT listener, where the user `relay` logs in with PLAIN. */
  saslBrokers: string[];
}

/**
 * A broker of the test's own with a SASL/PLAIN listener for the user `relay` (`password`) beside its plaintext one,
 * which stays for the readiness probe and the test's own admin (topics, ACLs, reading back). `properties` add to
 * or replace the broker's (an authorizer).
 */
export async function startSaslBroker(name: string, password: string, properties: Record<string, string> = {}): Promise<SaslBroker> {
  const [port, controllerPort, saslPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const broker = new KafkaBroker({
    name: uniqueName(name),
    port,
    controllerPort,
    properties: {
      listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort},SASL_PLAINTEXT://127.0.0.1:${saslPort}`,
      'advertised.listeners': `PLAINTEXT://127.0.0.1:${port},SASL_PLAINTEXT://127.0.0.1:${saslPort}`,
      'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT',
      'sasl.enabled.mechanisms': 'PLAIN',
      'listener.name.sasl_plaintext.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required user_relay="${password}";`,
      ...properties,
    },
  });
  await broker.start();
  return { broker, saslBrokers: [`127.0.0.1:${saslPort}`] };
}
