import { describe, expect, it } from 'vitest';
import { RelayError } from '../../src/errors.js';
import type { Lsn } from '../../src/lsn.js';
import { Relay } from '../../src/pipeline/relay.js';
import type { DeliveryCallbacks } from '../../src/sink/delivery.js';
import { capturingLogger, idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';

/** A relay on fakes; `errors` is what it counted in outbox_relay_errors_total, by code. */
function relayOnFakes(connect: () => Promise<void> = async () => undefined) {
  const errors: string[] = [];
  let callbacks!: DeliveryCallbacks;
  const relay = new Relay(relayConfig({ initialDelayMs: 5_000, maxDelayMs: 10_000, maxDurationMs: 600_000 }) as never, {
    logger: capturingLogger('fatal').logger,
    sink: { connect, send: async () => undefined, close: async () => undefined } as never,
    createDelivery: (given: DeliveryCallbacks) => {
      callbacks = given;
      return idleDelivery();
    },
    reportPosition: (lsn: Lsn) => lsn,
    observer: { error: (code: string) => errors.push(code) },
  } as never);
  return { relay, errors, callbacks: () => callbacks };
}

describe('Relay: outbox_relay_errors_total counts every halt and failure once', () => {
  it('a poison event that halts: counted when its policy is asked, not again at the halt', async () => {
    const { relay, errors, callbacks } = relayOnFakes();
    const poisoned = new RelayError('TOPIC_NOT_FOUND', 'no topic (fake)');
    expect(await callbacks().poison({ eventId: 'e-1' } as never, poisoned, new AbortController().signal, { send: (sending) => sending, backOff: async () => false })).toBe('halt');
    callbacks().stopped(poisoned);
    expect(await relay.run()).toMatchObject({ state: 'halted', error: poisoned });
    expect(errors).toEqual(['TOPIC_NOT_FOUND']);
  });

  it('a halt no poison policy saw (a record Kafka refused inside an exactly-once transaction): counted at the halt', async () => {
    const { relay, errors, callbacks } = relayOnFakes();
    callbacks().stopped(new RelayError('RECORD_TOO_LARGE', 'refused in a transaction (fake)'));
    expect(await relay.run()).toMatchObject({ state: 'halted' });
    expect(errors).toEqual(['RECORD_TOO_LARGE']);
  });

  it('a start that fails (Kafka refuses the credentials): counted with its code', async () => {
    const { relay, errors } = relayOnFakes(async () => {
      throw new RelayError('KAFKA_AUTH', 'SASL authentication failed (fake)', { retriable: false });
    });
    expect(await relay.run()).toMatchObject({ state: 'failed' });
    expect(errors).toEqual(['KAFKA_AUTH']);
  });
});
