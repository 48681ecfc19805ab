import { describe, expect, it } from 'vitest';
import { freePort } from '../../stack/ports.js';
import { configFifo, signalWhileReadingConfig } from '../support/config-fifo.js';
import { startRelay, type RelayProcess } from '../support/relay-process.js';
import { stack } from '../support/services.js';

/** Every exit other than 0 comes with exactly one error line that has a code and a fix. */
async function exitReason(relay: RelayProcess): Promise<Record<string, unknown>> {
  expect(await relay.exited, relay.dump()).toBe(1);
  const errors = relay.logs.filter((l) => l.level === 'error' || l.level === 'fatal');
  expect(errors, relay.dump()).toHaveLength(1);
  expect(String(errors[0]!.fix ?? ''), relay.dump()).not.toBe('');
  return errors[0]!;
}

// kafkajs pinned: these are its failure modes (librdkafka keeps retrying inside connect on its own schedule).
const FAST_GIVE_UP = ['--kafka-client', 'kafkajs', '--retry-max-duration', '1s', '--retry-initial-delay', '100ms', '--retry-max-delay', '200ms'];

describe('relay: a failed start exits with its reason', () => {
  it('Kafka unreachable at start for longer than retry.maxDuration: one error line with code and fix', async () => {
    const relay = startRelay(['run', '--postgres-url', 'postgres://nobody@127.0.0.1:1/none', '--kafka-brokers', `127.0.0.1:${await freePort()}`, ...FAST_GIVE_UP]);
    const reason = await exitReason(relay);
    expect(reason.code).toBe('KAFKA_UNAVAILABLE');
    expect(String(reason.fix)).toContain('kafka.brokers');
  });

  it('SASL against a plaintext listener: an authentication/protocol error with the fix, not "Kafka unavailable"', async () => {
    const relay = startRelay([
      'run', '--postgres-url', 'postgres://nobody@127.0.0.1:1/none', '--kafka-brokers', stack().brokers.join(','),
      '--kafka-sasl-mechanism', 'plain', '--kafka-sasl-username', 'relay', '--kafka-sasl-password', 'secret', ...FAST_GIVE_UP,
    ]);
    const reason = await exitReason(relay);
    expect(reason.code).toBe('KAFKA_AUTH');
    expect(String(reason.err)).toContain('ILLEGAL_SASL_STATE');
    expect(String(reason.fix)).toContain('listener');
  });

  // At the start line the Kafka client is still loading: a SIGTERM there met Node's default (killed, no line).
  // librdkafka's connection attempt to the unreachable broker holds the process on its way out until the attempt's
  // timeout: with a 15 s grace the watchdog exits 1 (SHUTDOWN_TIMEOUT) at 20 s, which the binding's 30 s reached.
  it('SIGTERM as soon as it starts, Kafka unreachable: stops with exit 0 and its lines within a 15 s grace', async () => {
    const relay = startRelay(['run', '--postgres-url', 'postgres://nobody@127.0.0.1:1/none', '--kafka-brokers', `127.0.0.1:${await freePort()}`, '--shutdown-grace', '15s']);
    await relay.waitForMessage('starting outbox-relay');
    relay.signal('SIGTERM');
    expect(await relay.exited, relay.dump()).toBe(0);
    expect(relay.logs.find((l) => l.msg === 'signal received: shutting down'), relay.dump()).toBeDefined();
    expect(relay.logs.filter((l) => l.level === 'error'), relay.dump()).toEqual([]);
  });

  // Until its handlers are installed the bin is still loading (100–300 ms): a SIGTERM there met Node's default,
  // exit 143 and not a line. The config file is a FIFO, so the relay stops in its config read, before it installs
  // them, until the test writes the file: the signal arrives in that window every time.
  it('SIGTERM while it is still loading, before its signal handlers: the start stops with exit 0 and its lines', async () => {
    const fifo = configFifo();
    const relay = startRelay(['run', '--config', fifo, '--postgres-url', 'postgres://nobody@127.0.0.1:1/none', '--kafka-brokers', `127.0.0.1:${await freePort()}`]);
    await signalWhileReadingConfig(fifo, () => relay.signal('SIGTERM'), 'slot: outbox_relay\n');
    expect(await relay.exited, relay.dump()).toBe(0);
    // Node hands the signal to JavaScript at the event loop's next turn after the read: before the relay is created
    // ('stopped before streaming') or, when loading the Kafka client took no turn, while it connects ('stopped',
    // nothing in flight). Either way the start stops, with these lines and no error.
    const messages = relay.logs.map((l) => l.msg);
    expect(messages.slice(0, 2), relay.dump()).toEqual(['starting outbox-relay', 'signal received: shutting down']);
    expect(['stopped before streaming', 'stopped'], relay.dump()).toContain(messages.at(-1));
    expect(messages, relay.dump()).not.toContain('streaming from PostgreSQL');
    expect(relay.logs.filter((l) => l.level === 'error'), relay.dump()).toEqual([]);
  });

  // A defect no handler caught ended the process with Node's default: its stack on stderr, not a JSON line, no code
  // nor fix. The defect here is a throw that a preload module makes on SIGUSR2.
  it('an exception no handler caught: exit 1 with one error line, code INTERNAL, the fix and its stack', async () => {
    // A reachable Kafka: librdkafka's connection attempt to an unreachable one would hold the exit (see above).
    const relay = startRelay(['run', '--postgres-url', 'postgres://nobody@127.0.0.1:1/none', '--kafka-brokers', stack().brokers.join(',')], {
      NODE_OPTIONS: "--import=data:text/javascript,process.on('SIGUSR2',()=>{throw(Error('injected-defect'))})",
    });
    await relay.waitForMessage('starting outbox-relay');
    relay.signal('SIGUSR2');
    const reason = await exitReason(relay);
    expect(reason, relay.dump()).toMatchObject({ code: 'INTERNAL', msg: 'crashed' });
    expect(String(reason.err)).toContain('injected-defect');
    expect(String(reason.stack)).toContain('Error: injected-defect');
  });
});
