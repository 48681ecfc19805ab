import { describe, expect, it } from 'vitest';
import { RelayError } from '../../src/errors.js';
import { Relay } from '../../src/pipeline/relay.js';
import { capturingLogger, relayWithDeliveryCallbacks } from '../support/fakes/relay-setup.js';

/** The message of the error line of a relay whose delivery stopped on `error`. */
async function haltMessage(error: RelayError): Promise<string> {
  const { logger, lines } = capturingLogger('info');
  const { relay, callbacks } = relayWithDeliveryCallbacks(Relay, logger);
  callbacks.stopped(error);
  expect(await relay.run()).toMatchObject({ state: 'halted' });
  const errors = lines.filter((line) => line.level === 50);
  expect(errors).toHaveLength(1);
  return String(errors[0]!.msg);
}

describe("the halt's log line", () => {
  it('names the event it stopped at and its commit LSN in its message, where a grep for the id finds it', async () => {
    const poison = new RelayError('RECORD_TOO_LARGE', 'cannot produce event "e-17" (commit LSN 0/1A2B3C8) to topic "orders": too large (fake)', {
      details: { eventId: 'e-17', lsn: '0/1A2B3C8', topic: 'orders' },
    });
    expect(await haltMessage(poison)).toBe('halted: event "e-17" (commit LSN 0/1A2B3C8) was not delivered; nothing after the confirmed position was confirmed; fix the cause and restart');
    // The id null (a mapper's refusal) or "" (the delivery's, for a row that had none): named alike, as the error is.
    for (const eventId of [null, '']) {
      const withoutId = new RelayError('RECORD_REQUIRED_NULL', 'cannot produce event without id (commit LSN 0/5) (fake)', { details: { eventId, lsn: '0/5' } });
      expect(await haltMessage(withoutId)).toBe('halted: event without id (commit LSN 0/5) was not delivered; nothing after the confirmed position was confirmed; fix the cause and restart');
    }
  });

  it('names no event for a halt no one event caused', async () => {
    const timeout = new RelayError('KAFKA_TXN_TIMEOUT', 'the source transaction at commit LSN 0/9 takes longer to produce than the Kafka transaction timeout (fake)');
    expect(await haltMessage(timeout)).toBe('halted: nothing after the confirmed position was confirmed; fix the cause and restart');
  });
});
