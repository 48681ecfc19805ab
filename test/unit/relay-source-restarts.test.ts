import { describe, expect, it } from 'vitest';
import { RelayError } from '../../src/errors.js';
import { EngineHarness, relayCallbacks } from '../support/fakes/engine-harness.js';
import { FakeSink, fenced, kafkaDown } from '../support/fakes/fake-sink.js';
import { capturingLogger } from '../support/fakes/relay-setup.js';

const RESTART = 'delivery aborted its uncommitted events: streaming again from the checkpoint';

describe('Relay, exactly-once: the source restarts of a Kafka outage', () => {
  it('one line when the outage starts and one when it ends, its restarts at debug; a fence, no outage, keeps its warn line', async () => {
    const { logger, lines } = capturingLogger('debug');
    // The relay's lines for what the engine tells it: two produces Kafka fails (each aborts the transaction and
    // restarts the source), one it takes, later a fence.
    const h = new EngineHarness({ guarantee: 'exactly-once', sink: new FakeSink().scriptSends(kafkaDown(), kafkaDown(), 'ok', fenced()), relay: relayCallbacks(logger) });
    for (let session = 0; session < 4; session++) {
      if (session > 0) h.newSession();
      h.transaction(`t${session}`, 1);
      await h.idle();
    }
    expect(h.restarts.map((e) => e.code)).toEqual(['KAFKA_UNAVAILABLE', 'KAFKA_UNAVAILABLE', 'PRODUCER_FENCED']);
    const said = (msg: string) => lines.filter((l) => l.msg === msg).map((l) => l.level);
    expect({
      started: said('Kafka unavailable: holding the confirmed position and retrying'),
      ended: said('Kafka available again: delivery resumed'),
      restarts: said(RESTART),
    }).toEqual({ started: [40], ended: [30], restarts: [20, 20, 40] });
    expect(lines.find((l) => l.msg === RESTART && l.level === 40)).toMatchObject({ code: 'PRODUCER_FENCED' });
  });

  it('a transaction the broker timed out during the outage is one of its attempts, at debug; one timed out with Kafka answering keeps its warn line', async () => {
    const { logger, lines } = capturingLogger('debug');
    const timeout = () => new RelayError('KAFKA_TXN_TIMEOUT', 'transaction timed out (fake)', { retriable: true });
    const down = () => new RelayError('KAFKA_UNAVAILABLE', 'commit timed out: coordinator not available (fake)', { retriable: true, details: { txnRetriable: true } });
    // Session 1: the commit fails, then the broker times the transaction out (the outage's doing). Session 2: it
    // commits (the outage ends). Session 3: a timeout with Kafka answering (the transaction's own length).
    const h = new EngineHarness({ guarantee: 'exactly-once', sink: new FakeSink().scriptCommits(down(), timeout(), 'ok', timeout(), 'ok'), relay: relayCallbacks(logger) });
    for (let session = 0; session < 3; session++) {
      if (session > 0) h.newSession();
      h.transaction(`t${session}`, 1);
      await h.idle();
    }
    expect(h.restarts.map((e) => e.code)).toEqual(['KAFKA_TXN_TIMEOUT', 'KAFKA_TXN_TIMEOUT']);
    expect(h.recovered).toBe(1);
    expect(lines.filter((l) => l.msg === RESTART).map((l) => [l.level, l.code])).toEqual([
      [20, 'KAFKA_TXN_TIMEOUT'],
      [40, 'KAFKA_TXN_TIMEOUT'],
    ]);
  });
});
