import { describe, expect, it } from 'vitest';
import { keyValues } from '../../src/cli/commands/output.js';
import { relayProblem, relayRows } from '../../src/cli/commands/status.js';
import { fetchRelayHealth } from '../../src/ops/relay-health.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const reachable = (readiness: Record<string, unknown>, httpStatus = 503) => ({ reachable: true as const, url: 'http://relay:9464/readyz', httpStatus, ready: false, readiness });

describe('status: why a relay is not ready', () => {
  it('a relay reconnecting because a session failed on the Kafka side is sent to Kafka, not PostgreSQL', () => {
    const kafka = relayProblem(reachable({ state: 'reconnecting', producerConnected: true, reconnecting: { system: 'Kafka', code: 'CHECKPOINT_FAILED', message: 'checkpoint read timed out' } }))!;
    expect(kafka.message).toContain('retrying Kafka: CHECKPOINT_FAILED checkpoint read timed out');
    expect(kafka.hint).toContain('Kafka unavailable while starting a replication session');
    expect(kafka.hint).not.toContain('PostgreSQL is unreachable');
    const pg = relayProblem(reachable({ state: 'reconnecting', producerConnected: true, reconnecting: { system: 'PostgreSQL', code: 'PG_UNAVAILABLE', message: 'connection refused' } }))!;
    expect(pg.hint).toContain('PostgreSQL is unreachable');
  });

  it('a streaming relay during a Kafka outage: the error names the outage\'s code and message, and its fix is the outage\'s own', () => {
    const reconnecting = { system: 'Kafka', code: 'KAFKA_AUTH', message: 'Cluster authorization failed', fix: 'grant IdempotentWrite on the cluster', since: '2026-12-07T19:00:00.000Z' };
    const problem = relayProblem(reachable({ state: 'streaming', producerConnected: false, reconnecting }))!;
    expect(problem.message).toBe('the relay is not ready: state streaming, producerConnected false, retrying Kafka since 2026-12-07T19:00:00.000Z: KAFKA_AUTH Cluster authorization failed');
    expect(problem.hint).toBe('grant IdempotentWrite on the cluster');
    // Without a fix of its own, the state's.
    expect(relayProblem(reachable({ state: 'streaming', producerConnected: false, reconnecting: { ...reconnecting, fix: null } }))!.hint).toContain('check kafka.brokers');
  });

  it("prints the reason one line per field, as a halt's, its since as /readyz gives it", () => {
    const reconnecting = { system: 'PostgreSQL', code: 'PG_STREAM_FAILED', message: 'connection refused', fix: null, since: '2026-12-07T19:00:00.000Z' };
    const text = keyValues(relayRows(reachable({ state: 'reconnecting', producerConnected: true, reconnecting })));
    expect(text).toMatch(/^reconnecting_system +PostgreSQL$/m);
    expect(text).toMatch(/^reconnecting_code +PG_STREAM_FAILED$/m);
    expect(text).toMatch(/^reconnecting_fix +-$/m);
    expect(text).toMatch(/^reconnecting_since +2026-12-07T19:00:00\.000Z$/m);
  });

  it('a relay reconnecting to PostgreSQL during a Kafka outage: both causes in the error, its fix, and the text (Kafka\'s as also_retrying_*)', () => {
    const pg = { system: 'PostgreSQL', code: 'PG_STREAM_FAILED', message: 'connection refused', fix: null, since: '2026-12-07T19:00:00.000Z' };
    const kafka = { system: 'Kafka', code: 'KAFKA_AUTH', message: 'Cluster authorization failed', fix: 'grant IdempotentWrite on the cluster', since: '2026-12-07T18:59:00.000Z' };
    const relay = reachable({ state: 'reconnecting', producerConnected: false, reconnecting: pg, outages: [pg, kafka] });
    const problem = relayProblem(relay)!;
    expect(problem.message).toBe(
      'the relay is not ready: state reconnecting, producerConnected false, retrying PostgreSQL since 2026-12-07T19:00:00.000Z: PG_STREAM_FAILED connection refused, retrying Kafka since 2026-12-07T18:59:00.000Z: KAFKA_AUTH Cluster authorization failed',
    );
    expect(problem.hint).toContain('PostgreSQL is unreachable');
    expect(problem.hint).toContain('for Kafka: grant IdempotentWrite on the cluster');
    const text = keyValues(relayRows(relay));
    expect(text).toMatch(/^reconnecting_system +PostgreSQL$/m);
    expect(text).toMatch(/^also_retrying_system +Kafka$/m);
    expect(text).toMatch(/^also_retrying_code +KAFKA_AUTH$/m);
    expect(text).toMatch(/^also_retrying_fix +grant IdempotentWrite on the cluster$/m);
    expect(text).toMatch(/^also_retrying_since +2026-12-07T18:59:00\.000Z$/m);
    expect(text).not.toMatch(/^outages /m);
    // One outage: `outages` repeats `reconnecting`, nothing more is printed.
    const alone = keyValues(relayRows(reachable({ state: 'reconnecting', producerConnected: true, reconnecting: pg, outages: [pg] })));
    expect(alone).not.toMatch(/also_retrying|^outages /m);
  });

  it('another server at --relay-url (any answer without the relay\'s state: a web page, a 404, {"ok":true}) is no relay reached, named so; not a relay not ready in state undefined', async () => {
    for (const [status, body] of [[200, '<html>welcome</html>'], [404, '{"error":"not found"}'], [200, '{"ok":true}']] as const) {
      const server = createServer((_req, res) => res.writeHead(status, { 'content-type': 'text/html' }).end(body));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const health = await fetchRelayHealth(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
        expect(health).toMatchObject({ reachable: false, reason: expect.stringContaining(`that is not the relay's /readyz (HTTP ${status}, `) });
        expect(relayProblem(health)).toMatchObject({ code: 'RELAY_UNREACHABLE', hint: expect.stringContaining('--relay-url') });
      } finally {
        server.close();
      }
    }
  });

  it('only the relay\'s body saying ready: true is ready', async () => {
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"state":"streaming","ready":false}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const health = await fetchRelayHealth(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      expect(health).toMatchObject({ reachable: true, httpStatus: 200, ready: false });
      expect(relayProblem(health)?.code).toBe('RELAY_NOT_READY');
    } finally {
      server.close();
    }
  });
});
