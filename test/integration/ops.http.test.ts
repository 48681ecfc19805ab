import { describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.js';
import { waitUntil } from '../../stack/index.js';
import { useDatabase } from '../support/database.js';
import { httpArgs, httpGet, metricSamples, metricValue, scrape, waitForEndpoint } from '../support/ops-http.js';
import { currentWalLsn, insertEvents, setupOutbox, slotConfirmedLsn } from '../support/outbox.js';
import { startRelay } from '../support/relay-process.js';
import { readTopic } from '../support/services.js';

describe('ops: health, readiness and metrics of a running relay', () => {
  const db = useDatabase('opshttp');

  it('serves /healthz, /readyz and /metrics whose values match the events delivered and the slot', async () => {
    const setup = await setupOutbox(db());
    const http = await httpArgs();
    const relay = startRelay([...setup.args, ...http.args]);
    const listening = await relay.waitForMessage('health and metrics endpoints listening');
    expect(listening.url).toBe(http.base);
    await relay.waitForMessage('streaming from PostgreSQL');

    const ready = await waitForEndpoint(`${http.base}/readyz`, 'ready', (r) => r.status === 200);
    expect(ready.contentType).toMatch(/^application\/json/);
    expect(JSON.parse(ready.body)).toEqual({
      ready: true,
      state: 'streaming',
      confirmedLsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/),
      deliveredLsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/),
      inFlightEvents: 0,
      inFlightBytes: 0,
      windowFullForMs: 0,
      producerConnected: true,
    });
    const live = await httpGet(`${http.base}/healthz`);
    expect(live.status).toBe(200);
    expect(JSON.parse(live.body)).toMatchObject({ alive: true, state: 'streaming' });

    const batches = [120, 1, 79];
    const firstCommitStarted = Date.now();
    let lastCommitStarted = 0;
    for (const n of batches) {
      lastCommitStarted = Date.now();
      await insertEvents(db(), n);
    }
    const total = batches.reduce((a, b) => a + b, 0);
    const lsnAfterCommits = await currentWalLsn(db());
    expect(await readTopic(setup.topic, { expected: total })).toHaveLength(total);

    // The relay confirms, then reports to PostgreSQL on its status interval: both settle on the same position.
    let metrics = '';
    await waitUntil(
      'confirmed LSN gauge equal to the slot confirmed_flush_lsn, past the last commit',
      async () => {
        metrics = await scrape(http.base);
        const gauge = metricValue(metrics, 'outbox_relay_confirmed_lsn');
        const slot = await slotConfirmedLsn(db(), setup.slot);
        return slot >= lsnAfterCommits && gauge === Number(slot);
      },
      30_000,
    );
    const events = metricSamples(metrics, 'outbox_relay_events_total');
    expect(events).toEqual([{ labels: { topic: setup.topic }, value: total }]);
    expect(metricValue(metrics, 'outbox_relay_bytes_total', { topic: setup.topic })).toBeGreaterThan(total * 10);
    const latencyCount = metricValue(metrics, 'outbox_relay_produce_latency_seconds_count')!;
    expect(latencyCount).toBeGreaterThanOrEqual(1);
    expect(latencyCount).toBeLessThanOrEqual(total);
    expect(metricValue(metrics, 'outbox_relay_produce_latency_seconds_bucket', { le: '+Inf' })).toBe(latencyCount);
    // No observation can be older than the first commit: a bound on the unit (seconds, not ms), not on speed.
    const sinceFirstCommit = (Date.now() - firstCommitStarted) / 1000;
    // One observation per transaction PostgreSQL sent (the three above; pgoutput skips empty ones), each read
    // from the stream's own timestamps.
    expect(metricValue(metrics, 'outbox_relay_source_delay_seconds_count')).toBe(batches.length);
    expect(metricValue(metrics, 'outbox_relay_source_delay_seconds_sum')).toBeLessThanOrEqual(batches.length * sinceFirstCommit);
    // One observation per event, timed from the socket read that carried its transaction.
    expect(metricValue(metrics, 'outbox_relay_event_latency_seconds_count')).toBe(total);
    expect(metricValue(metrics, 'outbox_relay_event_latency_seconds_bucket', { le: '+Inf' })).toBe(total);
    expect(metricValue(metrics, 'outbox_relay_event_latency_seconds_sum')).toBeLessThanOrEqual(total * sinceFirstCommit);
    expect(metricValue(metrics, 'outbox_relay_state', { state: 'streaming' })).toBe(1);
    expect(metricValue(metrics, 'outbox_relay_state', { state: 'standby' })).toBe(0);
    expect(metricValue(metrics, 'outbox_relay_active')).toBe(1);
    expect(metricValue(metrics, 'outbox_relay_producer_connected')).toBe(1);
    expect(metricValue(metrics, 'outbox_relay_in_flight_events')).toBe(0);
    expect(metricValue(metrics, 'outbox_relay_in_flight_bytes')).toBe(0);
    expect(metricValue(metrics, 'outbox_relay_reconnects_total')).toBe(0);
    expect(metricSamples(metrics, 'outbox_relay_errors_total')).toEqual([]);
    // The server position the relay knows is at most the WAL written by now (other tests write WAL too, so it moves).
    const walAfterScrape = await currentWalLsn(db());
    expect(metricValue(metrics, 'outbox_relay_slot_lag_bytes')).toBeLessThanOrEqual(Number(walAfterScrape - BigInt(metricValue(metrics, 'outbox_relay_confirmed_lsn')!)));
    // Lag is measured from the newer of the last confirmed commit and the last moment the relay was caught up, so it
    // can be no older than the last commit: not the age of the first event, nor a clock in the wrong unit.
    const lag = metricValue(metrics, 'outbox_relay_end_to_end_lag_seconds')!;
    expect(lag).toBeLessThanOrEqual((Date.now() - lastCommitStarted) / 1000);
    expect(metricSamples(metrics, 'process_cpu_user_seconds_total')).toHaveLength(1);

    const readyAfter = JSON.parse((await httpGet(`${http.base}/readyz`)).body) as { confirmedLsn: string };
    expect(parseLsn(readyAfter.confirmedLsn)).toBeGreaterThanOrEqual(lsnAfterCommits);

    expect((await httpGet(`${http.base}/nope`)).status).toBe(404);
    expect((await httpGet(`${http.base}/readyz`, { method: 'POST' })).status).toBe(405);

    // One line per state change at info, none per event.
    const info = relay.logs.filter((l) => l.level === 'info');
    for (const msg of ['starting outbox-relay', 'health and metrics endpoints listening', 'connected to Kafka', 'streaming from PostgreSQL']) {
      expect(info.filter((l) => l.msg === msg), msg).toHaveLength(1);
    }
    expect(info.length, relay.dump()).toBeLessThan(10);

    relay.signal('SIGTERM');
    expect(await relay.exited).toBe(0);
    await expect(httpGet(`${http.base}/healthz`)).rejects.toThrow();
  });
});
