import { readFileSync } from 'node:fs';
import pino from 'pino';
import { register } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { METRICS_DOC_PATH, sectionOf } from '../../scripts/gen-config-docs.js';
import type { SourceTransaction } from '../../src/checkpoint/ack-tracker.js';
import { RelayError } from '../../src/errors.js';
import { RelayMetrics } from '../../src/metrics/relay-metrics.js';
import { WeightedHistogram } from '../../src/metrics/weighted-histogram.js';
import type { OutboxEvent } from '../../src/route/event.js';
import { receiptsOf } from '../../src/sink/receipts.js';
import { relayCallbacks } from '../support/fakes/engine-harness.js';
import { metricSamples, metricValue } from '../support/ops-http.js';

function event(topic: string, size: number, error?: RelayError): OutboxEvent {
  return { topic, key: null, value: Buffer.alloc(size), headers: {}, eventId: 'e', size, txn: { readAtMs: Date.now() } as SourceTransaction, ...(error ? { error } : {}) };
}

const idle = { inFlight: { events: 0, bytes: 0, windowFullMs: 0, windowFullSinceMs: undefined } };

describe('RelayMetrics', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('counts delivered events and bytes per topic across runs of topics within a batch', async () => {
    const metrics = new RelayMetrics();
    metrics.delivered(receiptsOf([event('a', 10), event('a', 5), event('b', 7), event('a', 1)]), 12);
    metrics.delivered(receiptsOf([event('b', 3)]), 3000);
    const text = await metrics.render(idle);
    expect(metricValue(text, 'outbox_relay_events_total', { topic: 'a' })).toBe(3);
    expect(metricValue(text, 'outbox_relay_events_total', { topic: 'b' })).toBe(2);
    expect(metricValue(text, 'outbox_relay_bytes_total', { topic: 'a' })).toBe(16);
    expect(metricValue(text, 'outbox_relay_bytes_total', { topic: 'b' })).toBe(10);
    expect(metricValue(text, 'outbox_relay_produce_latency_seconds_count')).toBe(2);
    expect(metricValue(text, 'outbox_relay_produce_latency_seconds_sum')).toBeCloseTo(3.012);
    expect(metricValue(text, 'outbox_relay_produce_latency_seconds_bucket', { le: '0.025' })).toBe(1);
  });

  it('observes every event once in event_latency_seconds, from the read of its transaction to its acknowledgement, at the cost of one observation per transaction', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    const metrics = new RelayMetrics();
    const readAt = (ms: number) => ({ readAtMs: Date.now() - ms }) as SourceTransaction;
    const slow = readAt(300);
    const fast = readAt(4);
    const of = (txn: SourceTransaction, n: number) => Array.from({ length: n }, () => ({ ...event('a', 1), txn }));
    // One batch: 3 events of a transaction read 300 ms ago (they queued behind a slow batch), 7 of one read 4 ms ago.
    const observations = vi.spyOn(WeightedHistogram.prototype, 'observe');
    metrics.delivered(receiptsOf([...of(slow, 3), ...of(fast, 7)]), 2);
    expect(observations.mock.calls).toEqual([
      [0.3, 3],
      [0.004, 7],
    ]);
    observations.mockRestore();
    const text = await metrics.render(idle);
    expect(metricValue(text, 'outbox_relay_event_latency_seconds_count')).toBe(10);
    expect(metricValue(text, 'outbox_relay_event_latency_seconds_sum')).toBeCloseTo(0.928);
    expect(metricValue(text, 'outbox_relay_event_latency_seconds_bucket', { le: '0.005' })).toBe(7);
    expect(metricValue(text, 'outbox_relay_event_latency_seconds_bucket', { le: '0.25' })).toBe(7);
    expect(metricValue(text, 'outbox_relay_event_latency_seconds_bucket', { le: '0.5' })).toBe(10);
    expect(metricValue(text, 'outbox_relay_event_latency_seconds_bucket', { le: '+Inf' })).toBe(10);
    // The batch itself is one observation of produce latency.
    expect(metricValue(text, 'outbox_relay_produce_latency_seconds_count')).toBe(1);
  });

  it("observes each transaction's source delay (PostgreSQL's commit to its send), never below zero", async () => {
    const metrics = new RelayMetrics();
    metrics.transactionSent(1_000_000, 1_000_004);
    metrics.transactionSent(1_000_000, 1_000_300);
    metrics.transactionSent(1_000_000, 999_990); // a step of the server's clock
    const text = await metrics.render(idle);
    expect(metricValue(text, 'outbox_relay_source_delay_seconds_count')).toBe(3);
    expect(metricValue(text, 'outbox_relay_source_delay_seconds_sum')).toBeCloseTo(0.304);
    expect(metricValue(text, 'outbox_relay_source_delay_seconds_bucket', { le: '0.001' })).toBe(1);
    expect(metricValue(text, 'outbox_relay_source_delay_seconds_bucket', { le: '0.005' })).toBe(2);
    expect(metricValue(text, 'outbox_relay_source_delay_seconds_bucket', { le: '0.25' })).toBe(2);
    expect(metricValue(text, 'outbox_relay_source_delay_seconds_bucket', { le: '0.5' })).toBe(3);
  });

  it('a 10-minute latency (a Kafka outage, a backlog) lands in a finite bucket of each latency histogram, not only in +Inf', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    const metrics = new RelayMetrics();
    const tenMinutes = 600_000;
    metrics.delivered(receiptsOf([{ ...event('a', 1), txn: { readAtMs: Date.now() - tenMinutes } as SourceTransaction }]), tenMinutes);
    metrics.transactionSent(1_000_000, 1_000_000 + tenMinutes);
    const text = await metrics.render(idle);
    for (const name of ['produce_latency', 'event_latency', 'source_delay']) {
      const bucket = (le: string) => metricValue(text, `outbox_relay_${name}_seconds_bucket`, { le });
      expect([bucket('300'), bucket('600'), bucket('1800')], name).toEqual([0, 1, 1]);
    }
  });

  it('does not count a row the poison policy dealt with as relayed', async () => {
    const metrics = new RelayMetrics();
    metrics.delivered(receiptsOf([event('', 0, new RelayError('RECORD_REQUIRED_NULL', 'payload is NULL'))], true), 0);
    expect(metricSamples(await metrics.render(idle), 'outbox_relay_events_total')).toEqual([]);
  });

  it('reports exactly one current state and whether this instance holds the slot', async () => {
    const metrics = new RelayMetrics();
    let text = await metrics.render(idle);
    expect(metricValue(text, 'outbox_relay_state', { state: 'starting' })).toBe(1);
    metrics.stateChanged('standby');
    text = await metrics.render(idle);
    expect(metricSamples(text, 'outbox_relay_state').filter((s) => s.value === 1)).toEqual([{ labels: { state: 'standby' }, value: 1 }]);
    expect(metricSamples(text, 'outbox_relay_state')).toHaveLength(8);
    expect(metricValue(text, 'outbox_relay_active')).toBe(0);
    metrics.stateChanged('streaming');
    expect(metricValue(await metrics.render(idle), 'outbox_relay_active')).toBe(1);
    metrics.stateChanged('halted');
    expect(metricValue(await metrics.render(idle), 'outbox_relay_active')).toBe(0);
  });

  it('from its start, a relay that confirms nothing (Kafka refuses every produce) shows the lag growing, not 0', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    const metrics = new RelayMetrics();
    metrics.stateChanged('streaming');
    metrics.walPosition(0x50000000n);
    vi.setSystemTime(Date.now() + 90_000);
    expect(metricValue(await metrics.render(idle), 'outbox_relay_end_to_end_lag_seconds')).toBe(90);
  });

  it('takes the slot lag PostgreSQL counts while the stream gives no WAL position (halted, reconnecting, window full)', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    const metrics = new RelayMetrics();
    metrics.walPosition(0x2000n);
    metrics.reported(0x1000n);
    expect(metricValue(await metrics.render(idle), 'outbox_relay_slot_lag_bytes')).toBe(0x1000);
    vi.setSystemTime(Date.now() + 30_000);
    expect(metrics.walPositionAgeMs()).toBe(30_000);
    metrics.slotLagProbed(0x1000n + 2_000_000_000n, 2_000_000_000);
    expect(metricValue(await metrics.render(idle), 'outbox_relay_slot_lag_bytes')).toBe(2_000_000_000);
    // A full window still reports statuses: each computes the lag against the probed position, not the old keepalive's.
    metrics.reported(0x1000n);
    expect(metricValue(await metrics.render(idle), 'outbox_relay_slot_lag_bytes')).toBe(2_000_000_000);
  });

  it('reports no lag once demoted to a standby (a reconnect found the slot taken): 0, not its last position growing old', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    const metrics = new RelayMetrics();
    metrics.stateChanged('streaming');
    metrics.walPosition(0x50000000n);
    metrics.confirmed(0x1000n, Date.now() - 1000);
    metrics.reported(0x1000n);
    metrics.stateChanged('reconnecting');
    metrics.stateChanged('standby');
    vi.setSystemTime(Date.now() + 10 * 60_000);
    let text = await metrics.render(idle);
    // The other instance streams and reports the slot's lag; max by (job) must not see this one's stale figures.
    expect(metricValue(text, 'outbox_relay_end_to_end_lag_seconds')).toBe(0);
    expect(metricValue(text, 'outbox_relay_slot_lag_bytes')).toBe(0);
    // Taking over again, it measures afresh.
    metrics.stateChanged('streaming');
    metrics.walPosition(0x60000000n);
    metrics.confirmed(0x60000000n, Date.now() - 200);
    metrics.reported(0x60000000n);
    vi.setSystemTime(Date.now() + 300);
    text = await metrics.render(idle);
    expect(metricValue(text, 'outbox_relay_end_to_end_lag_seconds')).toBe(0.3);
    expect(metricValue(text, 'outbox_relay_slot_lag_bytes')).toBe(0);
  });

  it('observes produce latency only for round trips it timed: not a row the poison policy dealt with, not an at-most-once hand-off', async () => {
    const metrics = new RelayMetrics();
    metrics.delivered(receiptsOf([event('', 0, new RelayError('RECORD_REQUIRED_NULL', 'payload is NULL'))], true), undefined);
    metrics.delivered(receiptsOf([event('a', 10)]), undefined);
    metrics.delivered(receiptsOf([event('a', 10)]), 40);
    const text = await metrics.render(idle);
    expect(metricValue(text, 'outbox_relay_produce_latency_seconds_count')).toBe(1);
    expect(metricValue(text, 'outbox_relay_produce_latency_seconds_bucket', { le: '0.025' })).toBe(0);
    expect(metricValue(text, 'outbox_relay_events_total', { topic: 'a' })).toBe(2);
  });

  it('raises slot_lost on PG_SLOT_LOST and keeps it up while halted, until a session streams again', async () => {
    const metrics = new RelayMetrics();
    expect(metricValue(await metrics.render(idle), 'outbox_relay_slot_lost')).toBe(0);
    metrics.error('PG_STREAM_FAILED');
    expect(metricValue(await metrics.render(idle), 'outbox_relay_slot_lost')).toBe(0);
    metrics.error('PG_SLOT_LOST');
    metrics.stateChanged('halted');
    expect(metricValue(await metrics.render(idle), 'outbox_relay_slot_lost')).toBe(1);
    metrics.stateChanged('streaming');
    expect(metricValue(await metrics.render(idle), 'outbox_relay_slot_lost')).toBe(0);
  });

  it('with a replay window: confirmed_lsn and slot lag follow the reported position, delivered_lsn the delivered one', async () => {
    const metrics = new RelayMetrics();
    metrics.walPosition(0x3000n);
    metrics.confirmed(0x2800n, Date.now());
    metrics.reported(0x1000n);
    const text = await metrics.render({ inFlight: { events: 0, bytes: 0, windowFullMs: 0, windowFullSinceMs: undefined } });
    expect(metricValue(text, 'outbox_relay_delivered_lsn')).toBe(0x2800);
    expect(metricValue(text, 'outbox_relay_confirmed_lsn')).toBe(0x1000);
    expect(metricValue(text, 'outbox_relay_slot_lag_bytes')).toBe(0x2000);
  });

  it('exports retries and errors by code, reconnects, the producer, in-flight, and the confirmed LSN and slot lag', async () => {
    const metrics = new RelayMetrics();
    metrics.retrying('KAFKA_UNAVAILABLE');
    metrics.retrying('KAFKA_UNAVAILABLE');
    metrics.error('PG_STREAM_FAILED');
    metrics.reconnected();
    metrics.producerConnected(true);
    // Only Date is faked: prom-client's collectors still need real timers.
    vi.useFakeTimers({ toFake: ['Date'], now: 1_700_000_000_000 });
    metrics.walPosition(0x2000n);
    metrics.confirmed(0x1800n, Date.now() - 1000);
    vi.setSystemTime(Date.now() + 2500);
    const text = await metrics.render({ inFlight: { events: 4, bytes: 400, windowFullMs: 0, windowFullSinceMs: undefined } });
    expect(metricValue(text, 'outbox_relay_retries_total', { code: 'KAFKA_UNAVAILABLE' })).toBe(2);
    expect(metricValue(text, 'outbox_relay_errors_total', { code: 'PG_STREAM_FAILED' })).toBe(1);
    expect(metricValue(text, 'outbox_relay_reconnects_total')).toBe(1);
    expect(metricValue(text, 'outbox_relay_producer_connected')).toBe(1);
    expect(metricValue(text, 'outbox_relay_in_flight_events')).toBe(4);
    expect(metricValue(text, 'outbox_relay_in_flight_bytes')).toBe(400);
    expect(metricValue(text, 'outbox_relay_confirmed_lsn')).toBe(0x1800);
    expect(metricValue(text, 'outbox_relay_slot_lag_bytes')).toBe(0x800);
    // Not caught up (0x1800 < 0x2000): the lag runs from the last confirmed commit, 1 s before it was confirmed.
    expect(metricValue(text, 'outbox_relay_end_to_end_lag_seconds')).toBe(3.5);
  });

  it('counts the time the in-flight window was full, the current stretch included, and never counts back', async () => {
    const metrics = new RelayMetrics();
    const at = (windowFullMs: number) => ({ inFlight: { events: 0, bytes: 0, windowFullMs, windowFullSinceMs: undefined } });
    expect(metricValue(await metrics.render(at(0)), 'outbox_relay_window_full_seconds_total')).toBe(0);
    expect(metricValue(await metrics.render(at(1500)), 'outbox_relay_window_full_seconds_total')).toBe(1.5);
    expect(metricValue(await metrics.render(at(4000)), 'outbox_relay_window_full_seconds_total')).toBe(4);
    expect(metricValue(await metrics.render(at(3999)), 'outbox_relay_window_full_seconds_total')).toBe(4);
  });

  it('once halted, reports nothing in flight and stops counting window-full time, as /readyz does (the halted delivery keeps its counts)', async () => {
    const metrics = new RelayMetrics();
    metrics.stateChanged('streaming');
    const full = (windowFullMs: number) => ({ inFlight: { events: 5000, bytes: 9000, windowFullMs, windowFullSinceMs: 1 } });
    let text = await metrics.render(full(4000));
    expect(metricValue(text, 'outbox_relay_in_flight_events')).toBe(5000);
    expect(metricValue(text, 'outbox_relay_window_full_seconds_total')).toBe(4);
    // Halted on a poison event with the window full: its queue stays, and so does the full stretch.
    metrics.stateChanged('halted');
    text = await metrics.render(full(3_604_000));
    expect(metricValue(text, 'outbox_relay_in_flight_events')).toBe(0);
    expect(metricValue(text, 'outbox_relay_in_flight_bytes')).toBe(0);
    // Not "Kafka set the pace for the last hour": the relay read nothing because it halted.
    expect(metricValue(text, 'outbox_relay_window_full_seconds_total')).toBe(4);
  });

  it('keeps its metrics out of the global registry, so two instances coexist, and includes process metrics', async () => {
    const first = new RelayMetrics();
    const second = new RelayMetrics();
    first.reconnected();
    expect(metricValue(await second.render(idle), 'outbox_relay_reconnects_total')).toBe(0);
    expect(await register.getSingleMetric('outbox_relay_events_total')).toBeUndefined();
    expect(metricSamples(await first.render(idle), 'process_cpu_user_seconds_total')).toHaveLength(1);
    expect(first.contentType).toMatch(/^text\/plain/);
  });

  it('every outbox_relay_ metric is documented in docs/metrics.md, and only those', async () => {
    const section = sectionOf(readFileSync(METRICS_DOC_PATH, 'utf8'), 'observability') ?? '';
    const registered = (await new RelayMetrics().registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => n.startsWith('outbox_relay_'));
    const documented = [...new Set([...section.matchAll(/^\| `(outbox_relay_[a-z_]+)`/gm)].map((m) => m[1]))];
    expect(documented.sort()).toEqual(registered.sort());
  });
});

// The drop's own line says it is not retried; retries_total counted it as a retry of its code.
describe('RelayMetrics through the relay: an at-most-once batch Kafka refused', () => {
  it('is counted dropped, and not as a retry', async () => {
    const metrics = new RelayMetrics();
    relayCallbacks(pino({ level: 'silent' }), { observer: metrics }).dropped(5, new RelayError('RECORD_TOO_LARGE', 'too large (fake)'));
    const text = await metrics.render(idle);
    expect(metricValue(text, 'outbox_relay_events_dropped_total')).toBe(5);
    expect(metricSamples(text, 'outbox_relay_retries_total')).toEqual([]);
  });
});
