import { describe, expect, it, vi } from 'vitest';
import { RelayHealth, type Readiness } from '../../src/http/health.js';
import { RelayError } from '../../src/errors.js';
import { capturingLogger, relayWithDeliveryCallbacks } from '../support/fakes/relay-setup.js';

// Every session fails before streaming: the relay reconnects to PostgreSQL until it is stopped.
vi.mock('../../src/pipeline/session.js', async () => ({
  Session: (await import('../support/fakes/relay-setup.js')).failingSession(() => undefined, { streams: () => false, progresses: () => false, message: 'connection refused (fake)' }),
}));

const { Relay } = await import('../../src/pipeline/relay.js');

describe('Relay, reconnecting to PostgreSQL while delivery waits out a Kafka outage', () => {
  it('/readyz keeps reconnecting the session\'s cause and lists both outages, PostgreSQL\'s and Kafka\'s, in outages', async () => {
    const { logger } = capturingLogger('silent');
    const { relay, callbacks } = relayWithDeliveryCallbacks(Relay, logger);
    const health = new RelayHealth(1000);
    // Delivery's retry of what was in flight failed: the Kafka outage opens while the relay starts its session.
    callbacks.retrying(new RelayError('KAFKA_UNAVAILABLE', 'brokers unreachable (fake)', { retriable: true, hint: 'check kafka.brokers' }), 1, 1000);
    const outcome = relay.run();
    while (relay.currentState !== 'reconnecting') await new Promise((resolve) => setTimeout(resolve, 1));
    const body: Readiness = health.readiness(relay);
    await relay.stop({ openTransaction: 'drop' });
    await outcome;
    expect(body.reconnecting).toMatchObject({ system: 'PostgreSQL', code: 'PG_STREAM_FAILED', message: 'connection refused (fake)' });
    expect(body.outages).toMatchObject([
      { system: 'PostgreSQL', code: 'PG_STREAM_FAILED', message: 'connection refused (fake)' },
      { system: 'Kafka', code: 'KAFKA_UNAVAILABLE', message: 'brokers unreachable (fake)', fix: 'check kafka.brokers' },
    ]);
    expect(body.outages![0]).toEqual(body.reconnecting);
  });
});
