import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { keyValues } from '../../src/cli/commands/output.js';
import { relayRows } from '../../src/cli/commands/status.js';
import { RelayError } from '../../src/errors.js';
import { RelayHealth, type RelayView } from '../../src/http/health.js';
import type { RelayState } from '../../src/pipeline/observer.js';
import { EngineHarness, relayCallbacks, settle } from '../support/fakes/engine-harness.js';

function view(state: RelayState): RelayView {
  return { currentState: state, reportedLsn: 0x16b3748n, deliveredLsn: 0x16b3748n, reconnectCause: undefined, outageCauses: [], inFlight: { events: 3, bytes: 120, windowFullMs: 0, windowFullSinceMs: undefined } };
}

describe('RelayHealth', () => {
  it('is ready only while streaming with the producer connected, and reports the fields status reads', () => {
    const health = new RelayHealth(1000);
    expect(health.readiness(view('streaming')).ready).toBe(false);
    health.producerConnected(true);
    expect(health.readiness(view('streaming'))).toEqual({
      ready: true,
      state: 'streaming',
      confirmedLsn: '0/16B3748',
      deliveredLsn: '0/16B3748',
      inFlightEvents: 3,
      inFlightBytes: 120,
      windowFullForMs: 0,
      producerConnected: true,
    });
    for (const state of ['starting', 'standby', 'reconnecting', 'draining', 'halted', 'stopped', 'failed'] as const) {
      expect(health.readiness(view(state)).ready, state).toBe(false);
    }
    health.producerConnected(false);
    expect(health.readiness(view('streaming'))).toMatchObject({ ready: false, producerConnected: false });
  });

  it('counts nothing in flight once halted, failed or stopped (the poison event is refused, not on its way)', () => {
    const health = new RelayHealth(1000);
    for (const state of ['halted', 'failed', 'stopped'] as const) expect(health.readiness(view(state)), state).toMatchObject({ inFlightEvents: 0, inFlightBytes: 0 });
    expect(health.readiness(view('draining'))).toMatchObject({ inFlightEvents: 3, inFlightBytes: 120 });
  });

  it('says how long the in-flight window has been full, and 0 once the relay ended', () => {
    const now = 50_000;
    const health = new RelayHealth(1000, 0, () => now);
    const full = (state: RelayState): RelayView => ({ ...view(state), inFlight: { events: 5000, bytes: 9000, windowFullMs: 4000, windowFullSinceMs: now - 1500 } });
    expect(health.readiness(full('streaming')).windowFullForMs).toBe(1500);
    expect(health.readiness(full('draining')).windowFullForMs).toBe(1500);
    expect(health.readiness(full('halted')).windowFullForMs).toBe(0);
  });

  it('is wedged only when streaming and silent for longer than the threshold', () => {
    let now = 0;
    const health = new RelayHealth(1000, 0, () => now);
    health.producerConnected(true);
    now = 119_000;
    expect(health.liveness(view('streaming')).alive).toBe(true);
    now = 121_000;
    expect(health.liveness(view('streaming'))).toEqual({ alive: false, state: 'streaming', silentForMs: 121_000 });
    expect(health.liveness(view('standby')).alive).toBe(true);
    expect(health.liveness(view('halted')).alive).toBe(true);
    health.walPosition();
    expect(health.liveness(view('streaming'))).toEqual({ alive: true, state: 'streaming', silentForMs: 0 });
  });

  it('allows five status intervals of silence when the interval is long', () => {
    let now = 0;
    const health = new RelayHealth(60_000, 0, () => now);
    health.producerConnected(true);
    now = 299_000;
    expect(health.liveness(view('streaming')).alive).toBe(true);
    now = 301_000;
    expect(health.liveness(view('streaming')).alive).toBe(false);
  });

  it('allows a silent full window until kafka.deliveryTimeout declares the outage, when that is longer than two minutes', () => {
    let now = 0;
    const health = new RelayHealth(1000, 300_000, () => now);
    health.producerConnected(true);
    now = 304_000;
    expect(health.liveness(view('streaming')).alive).toBe(true);
    now = 306_000;
    expect(health.liveness(view('streaming')).alive).toBe(false);
  });

  it('stays alive while streaming through a Kafka outage, silent as it is (window full: no keepalives; librdkafka: one retry per outage)', () => {
    let now = 0;
    const health = new RelayHealth(1000, 0, () => now);
    health.producerConnected(true);
    now = 10_000;
    // The stall check's one report of the outage (Relay.kafkaDown): a retry, then the producer down.
    health.retrying();
    health.producerConnected(false);
    now = 10_000 + 25 * 60_000;
    // retry.maxDuration (30 min by default) ends the wait, not a liveness probe after 2 min.
    expect(health.liveness(view('streaming'))).toMatchObject({ alive: true, state: 'streaming' });
    health.producerConnected(true);
    now += 121_000;
    expect(health.liveness(view('streaming')).alive).toBe(false);
  });

  it('counts deliveries, confirmations, retries and state changes as signs of life', () => {
    let now = 0;
    const health = new RelayHealth(1000, 0, () => now);
    // With the producer connected, a relay showing no sign of life for long is not alive (the test above).
    health.producerConnected(true);
    for (const report of [() => health.delivered(), () => health.confirmed(), () => health.retrying(), () => health.stateChanged()]) {
      now += 500_000;
      expect(health.liveness(view('streaming')).alive).toBe(false);
      report();
      expect(health.liveness(view('streaming')).alive).toBe(true);
    }
  });

  it('confirmedLsn is the position PostgreSQL holds; deliveredLsn what Kafka acknowledged (ahead by a replay window)', () => {
    const health = new RelayHealth(1000);
    expect(health.readiness({ ...view('streaming'), reportedLsn: 0x1000n, deliveredLsn: 0x2000n })).toMatchObject({ confirmedLsn: '0/1000', deliveredLsn: '0/2000' });
  });

  it("a standby that never streamed: no position at all, null in /readyz and '-' in status, not 0/0", () => {
    const readiness = new RelayHealth(1000).readiness({ ...view('standby'), reportedLsn: undefined, deliveredLsn: 0n });
    // Before: deliveredLsn "0/0" beside confirmedLsn null.
    expect(readiness).toMatchObject({ confirmedLsn: null, deliveredLsn: null });
    const text = keyValues(relayRows({ reachable: true, url: 'http://relay:9464/readyz', httpStatus: 503, ready: false, readiness: { ...readiness } }));
    expect(text).toMatch(/^confirmedLsn +-$/m);
    expect(text).toMatch(/^deliveredLsn +-$/m);
  });

  it('names the system a reconnecting relay retries, with its code and message (Kafka too: a session needs the checkpoint topic)', () => {
    const health = new RelayHealth(1000);
    const cause = { system: 'Kafka', code: 'CHECKPOINT_FAILED', message: 'checkpoint read timed out', fix: null, since: '2026-12-07T19:00:00.000Z' } as const;
    expect(health.readiness({ ...view('reconnecting'), reconnectCause: cause }).reconnecting).toEqual(cause);
    expect(health.readiness(view('reconnecting')).reconnecting).toBeUndefined();
  });

  it('names the Kafka outage of a streaming relay in the same field, and not once it halted or failed (halt says why)', () => {
    const health = new RelayHealth(1000);
    health.producerConnected(false);
    const cause = { system: 'Kafka', code: 'KAFKA_AUTH', message: 'Cluster authorization failed', fix: 'grant IdempotentWrite', since: '2026-12-07T19:00:00.000Z' } as const;
    expect(health.readiness({ ...view('streaming'), reconnectCause: cause })).toMatchObject({ ready: false, producerConnected: false, reconnecting: cause });
    for (const ended of ['halted', 'failed', 'stopped'] as const) expect(health.readiness({ ...view(ended), reconnectCause: cause }).reconnecting).toBeUndefined();
  });

  it('lists every outage it retries in outages (Kafka\'s beside a reconnecting session\'s), with reconnecting unchanged, and none once ended', () => {
    const health = new RelayHealth(1000);
    health.producerConnected(false);
    const pg = { system: 'PostgreSQL', code: 'PG_STREAM_FAILED', message: 'connection refused', fix: null, since: '2026-12-07T19:00:00.000Z' } as const;
    const kafka = { system: 'Kafka', code: 'KAFKA_UNAVAILABLE', message: 'brokers unreachable', fix: null, since: '2026-12-07T18:59:00.000Z' } as const;
    const body = health.readiness({ ...view('reconnecting'), reconnectCause: pg, outageCauses: [pg, kafka] });
    expect(body).toMatchObject({ reconnecting: pg, outages: [pg, kafka] });
    expect(health.readiness(view('streaming')).outages).toBeUndefined();
    for (const ended of ['halted', 'failed', 'stopped'] as const) expect(health.readiness({ ...view(ended), reconnectCause: pg, outageCauses: [pg, kafka] }).outages).toBeUndefined();
  });

  it('names the failure of a relay that gave up (failed), as of a halt', () => {
    const health = new RelayHealth(1000);
    health.halted(new RelayError('RETRIES_EXHAUSTED', 'PostgreSQL unreachable for 1800 s', { hint: 'check that PostgreSQL is up' }));
    expect(health.readiness(view('failed')).halt).toMatchObject({ code: 'RETRIES_EXHAUSTED', fix: 'check that PostgreSQL is up' });
  });

  it('names the halt in the readiness body while halted: code, event, commit LSN, fix', () => {
    const health = new RelayHealth(1000);
    health.halted(new RelayError('TOPIC_NOT_FOUND', 'no topic', { hint: 'create it', details: { eventId: 'e-1', lsn: '0/16B3748' } }));
    expect(health.readiness(view('halted')).halt).toMatchObject({ code: 'TOPIC_NOT_FOUND', message: 'no topic', fix: 'create it', eventId: 'e-1', commitLsn: '0/16B3748' });
    expect(health.readiness(view('streaming')).halt).toBeUndefined();
  });

  // Under exactly-once nothing is delivered before the Kafka commit, which waits for the source transaction's: one
  // that streamed for longer than the threshold (delivery.transactionTimeout raised, as KAFKA_TXN_TIMEOUT's fix
  // says) read as wedged, and the liveness probe restarted the pod, which streamed the same transaction again.
  it('an exactly-once relay streaming one long source transaction, every produce acknowledged, is alive', async () => {
    let now = 0;
    const health = new RelayHealth(10_000, 30_000, () => now);
    health.producerConnected(true);
    const h = new EngineHarness({ guarantee: 'exactly-once', limits: { batchMaxEvents: 100 }, relay: relayCallbacks(pino({ level: 'silent' }), { observer: health }) });
    const { txn } = h.begin('long', 0);
    // Three minutes of it, 1,000 events every 10 s.
    for (let tick = 0; tick < 18; tick++) {
      for (let i = 0; i < 1000; i++) h.push(txn, `long.${tick}.${i}`);
      await settle(20);
      now += 10_000;
    }
    expect(h.sink.written).toHaveLength(18_000);
    expect(h.sink.visible).toEqual([]);
    expect(health.liveness(view('streaming')).alive).toBe(true);
    h.engine.stop();
  });
});
