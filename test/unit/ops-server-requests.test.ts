import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayHealth, type RelayView } from '../../src/http/health.js';
import { MAX_CONNECTIONS, startOpsServer, type OpsServer } from '../../src/http/server.js';
import { RelayMetrics } from '../../src/metrics/relay-metrics.js';
import { waitUntil } from '../../stack/processes.js';

const relay: RelayView = { currentState: 'streaming', reportedLsn: 0n, deliveredLsn: 0n, reconnectCause: undefined, outageCauses: [], inFlight: { events: 0, bytes: 0, windowFullMs: 0, windowFullSinceMs: undefined } };
const deps = { logger: pino({ level: 'silent' }), relay, health: new RelayHealth(1000), metrics: new RelayMetrics() };

/** GETs `target` as written (no client rewrites it) on a connection of its own; resolves with the status line. */
function statusLine(server: OpsServer, target: string): Promise<string> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(`GET ${target} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString();
      if (text.includes('\r\n')) {
        resolve(text.split('\r\n', 1)[0]!);
        socket.destroy();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('closed without an answer')));
  });
}

describe('ops server: request targets and connections', () => {
  let server: OpsServer;
  const held: Socket[] = [];

  beforeAll(async () => {
    server = await startOpsServer({ host: '127.0.0.1', port: 0 }, deps);
  });

  afterAll(async () => {
    for (const socket of held) socket.destroy();
    await server.close();
  });

  it('answers a target in absolute form as its path (HTTP/1.1 servers must accept it)', async () => {
    expect(await statusLine(server, `${server.url}/metrics`)).toBe('HTTP/1.1 200 OK');
    expect(await statusLine(server, `${server.url}/healthz?verbose`)).toBe('HTTP/1.1 200 OK');
    expect(await statusLine(server, '/nothing')).toBe('HTTP/1.1 404 Not Found');
  });

  it('a target that is no URL gets 400, and the server goes on answering', async () => {
    expect(await statusLine(server, 'http://[bad/metrics')).toBe('HTTP/1.1 400 Bad Request');
    expect(await statusLine(server, '/readyz')).toMatch(/^HTTP\/1\.1 (200|503) /);
  });

  it(`closes connections past ${MAX_CONNECTIONS} open ones, and answers again once they are gone`, async () => {
    const { hostname, port } = new URL(server.url);
    const open = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const socket = connect(Number(port), hostname, () => resolve(socket));
        socket.on('error', reject);
      });
    for (let i = 0; i < MAX_CONNECTIONS; i++) held.push(await open());
    const extra = await open();
    const closed = await new Promise<boolean>((resolve) => {
      extra.on('close', () => resolve(true));
      extra.write('GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n');
      setTimeout(() => resolve(false), 5000);
    });
    expect(closed).toBe(true);
    for (const socket of held.splice(0)) socket.destroy();
    // The server counts a connection gone once it handled its close, which may come after this client's.
    let answer = '';
    await waitUntil('an answer once the held connections closed', async () => (answer = await statusLine(server, '/healthz')) !== '', 5000);
    expect(answer).toBe('HTTP/1.1 200 OK');
  });

  it('docs/metrics.md gives the same limit', () => {
    expect(readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8')).toContain(`at most ${MAX_CONNECTIONS} connections open`);
  });
});
