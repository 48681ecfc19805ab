import { describe, expect, it } from 'vitest';
import { RelayHealth, type RelayView } from '../../src/http/health.js';
import { lostProducerError } from '../../src/sink/rdkafka-errors.js';
import { EngineHarness, relayCallbacks, relayOnFakes, settle } from '../support/fakes/engine-harness.js';
import { capturingLogger } from '../support/fakes/relay-setup.js';

/** librdkafka's fatal error event for an idempotent producer refused its id (CLUSTER_AUTHORIZATION_FAILED). */
const refusedId = () => lostProducerError({ code: 31, isFatal: true, message: 'Broker: Cluster authorization failed' }, ['k:9092']);

const streaming: RelayView = { currentState: 'streaming', reportedLsn: 0n, deliveredLsn: 0n, reconnectCause: undefined, outageCauses: [], inFlight: { events: 0, bytes: 0, windowFullMs: 0, windowFullSinceMs: undefined } };

/** An idle at-least-once engine over a FakeSink, wired to a relay's callbacks (its log lines) and a /readyz (RelayHealth), the producer connected. */
function idleRelay(maxDurationMs = 60_000) {
  const { logger, lines } = capturingLogger('debug');
  const health = new RelayHealth(1000);
  health.producerConnected(true);
  const { relay, callbacks } = relayOnFakes(logger, { observer: health });
  const h = new EngineHarness({ guarantee: 'at-least-once', retry: { maxDurationMs }, relay: callbacks });
  // The /readyz body of a streaming relay: its cause is the relay's own.
  const body = () => health.readiness({ ...streaming, reconnectCause: relay.reconnectCause, outageCauses: relay.outageCauses });
  return { h, lines, health, body, ready: () => body().ready };
}

// librdkafka asks for the idempotent producer's id as soon as the producer exists: a principal without the
// IdempotentWrite grant is refused at the start, fatally. The sink kept that until the first send, so an idle relay
// stayed ready and logged nothing, and the operator learnt of the missing grant from the first event, hours later.
describe('a producer the sink lost with nothing in flight (a producer id refused while idle)', () => {
  it('opens the Kafka outage at once: not ready, one warn line with the IdempotentWrite fix; a check that finds a new producer usable ends it', async () => {
    const { h, lines, ready } = idleRelay();
    expect(ready()).toBe(true);
    h.sink.lostCheck = refusedId();
    h.sink.loseProducer(refusedId());
    while (h.sink.lostChecks < 2) await settle();
    expect(ready()).toBe(false);
    const warns = lines.filter((l) => l.level === 40);
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ msg: 'Kafka unavailable: holding the confirmed position and retrying', code: 'KAFKA_AUTH' });
    expect(String(warns[0]!.fix)).toContain('IdempotentWrite');
    expect(h.sink.calls).toEqual([]);
    // The grant is given: the next check ends the outage with nothing sent.
    h.sink.lostCheck = 'ok';
    while (h.recovered === 0) await settle();
    expect(ready()).toBe(true);
    expect(lines.filter((l) => l.msg === 'Kafka available again: delivery resumed')).toHaveLength(1);
    h.engine.stop();
  });

  it('/readyz names the outage while it lasts (system, code, message, the warn line\'s fix, since its start) and not once it ended', async () => {
    const { h, lines, body } = idleRelay();
    const before = new Date().toISOString();
    h.sink.lostCheck = refusedId();
    h.sink.loseProducer(refusedId());
    while (h.sink.lostChecks < 2) await settle();
    const down = body();
    const warn = lines.find((l) => l.level === 40)!;
    expect(down).toMatchObject({ ready: false, producerConnected: false, reconnecting: { system: 'Kafka', code: 'KAFKA_AUTH', message: warn.err, fix: warn.fix } });
    expect(String(down.reconnecting?.fix)).toContain('IdempotentWrite');
    const since = down.reconnecting!.since;
    expect(since >= before && since <= new Date().toISOString()).toBe(true);
    // Later attempts name their own failure, but the outage began at the first.
    while (h.sink.lostChecks < 4) await settle();
    expect(body().reconnecting?.since).toBe(since);
    h.sink.lostCheck = 'ok';
    while (h.recovered === 0) await settle();
    expect(body()).toMatchObject({ ready: true, producerConnected: true });
    expect(body().reconnecting).toBeUndefined();
    h.engine.stop();
  });

  it('refused for retry.maxDuration: delivery stops with RETRIES_EXHAUSTED, its fix the grant', async () => {
    const { h } = idleRelay(20);
    h.sink.lostCheck = refusedId();
    h.sink.loseProducer(refusedId());
    while (h.stopped.length === 0) await settle();
    expect(h.stopped[0]).toMatchObject({ code: 'RETRIES_EXHAUSTED' });
    expect(h.stopped[0]!.hint).toContain('IdempotentWrite');
  });

  it('a stop does not wait out its backoff: nothing waits in it to be drained', async () => {
    const { logger } = capturingLogger('silent');
    const h = new EngineHarness({ guarantee: 'at-least-once', retry: { initialDelayMs: 3_600_000, maxDelayMs: 3_600_000 }, relay: relayCallbacks(logger) });
    h.sink.loseProducer(refusedId());
    while (h.retrying.length === 0) await settle();
    void h.engine.drain();
    await h.idle();
    h.engine.stop();
  });

  it('with a send in flight the send reports it: no outage of its own', async () => {
    const { h, ready } = idleRelay();
    h.sink.scriptSends('hang');
    h.transaction('a', 1);
    while (h.sink.calls.length === 0) await settle();
    h.sink.loseProducer(refusedId());
    await settle();
    expect(ready()).toBe(true);
    expect(h.sink.lostChecks).toBe(0);
    h.sink.calls[0]!.answer.resolve();
    await h.idle();
    expect(h.acknowledged).toBe(1);
    h.engine.stop();
  });
});

