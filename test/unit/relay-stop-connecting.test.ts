import { describe, expect, it } from 'vitest';
import { RelayError } from '../../src/errors.js';
import type { Lsn } from '../../src/lsn.js';
import { Relay } from '../../src/pipeline/relay.js';
import type { CloseOptions } from '../../src/sink/sink.js';
import { capturingLogger, idleDelivery, relayConfig } from '../support/fakes/relay-setup.js';

/** A relay whose sink connects with `connect`, running; the test stops it. `closes` has the options of each close of the sink. */
function runningRelay(connect: () => Promise<void>) {
  const closes: CloseOptions[] = [];
  const { logger, lines } = capturingLogger('info');
  const config = relayConfig({ initialDelayMs: 5_000, maxDelayMs: 10_000, maxDurationMs: 600_000 });
  const relay = new Relay(config as never, {
    logger,
    sink: { connect, send: async () => undefined, close: async (options: CloseOptions) => void closes.push(options) } as never,
    createDelivery: idleDelivery,
    reportPosition: (lsn: Lsn) => lsn,
    observer: {},
  } as never);
  return { relay, lines, closes, outcome: relay.run() };
}

describe('Relay, a stop while Kafka cannot be reached yet at start', () => {
  it('stops (exit 0, no error line) instead of trying Kafka once more and giving up', async () => {
    let connects = 0;
    const { relay, lines, outcome } = runningRelay(async () => {
      connects++;
      throw new RelayError('KAFKA_UNAVAILABLE', 'no broker answered (fake)', { retriable: true });
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    // SIGTERM during the backoff between two connection attempts.
    await relay.stop();
    expect(await outcome).toEqual({ state: 'stopped' });
    expect(connects).toBe(1);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  });

  it('stops without waiting for a connection attempt still under way (librdkafka ends one to an unreachable broker only at its own timeout)', async () => {
    const { relay, outcome } = runningRelay(() => new Promise(() => undefined));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await relay.stop();
    const settled = await Promise.race([outcome, new Promise((resolve) => setTimeout(() => resolve('still connecting'), 1000))]);
    expect(settled).toEqual({ state: 'stopped' });
  });

  it('closes the sink that never connected without a flush (kafkajs waited its 5 s for the connect still under way)', async () => {
    const { relay, closes, outcome } = runningRelay(() => new Promise(() => undefined));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await relay.stop();
    expect(await outcome).toEqual({ state: 'stopped' });
    expect(closes).toEqual([{ flush: false, closeBy: expect.any(Number) as unknown }]);
  });
});
